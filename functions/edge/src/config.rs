//! Reads the workers' configuration (`[vars]` and secrets; README, configuration table).

use worker::Env;

use crate::http::Problem;

/// A variable or secret as a string; `None` when unset or empty.
pub fn optional(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|value| !value.is_empty())
}

/// A variable or secret that must be set; a missing one is a deployment error (500, logged).
pub fn required(env: &Env, name: &str) -> Result<String, Problem> {
    optional(env, name)
        .ok_or_else(|| Problem::internal("configuration", format!("{name} is not set")))
}
