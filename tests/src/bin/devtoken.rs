//! Mints a development JWT for trying the API with curl: `make token ORG=acme ROLE=admin`.
//!
//! The key is `AUTH_JWT_SECRET` from the environment, else from `.dev.vars` (development values),
//! so the token is accepted by the runtime that `make dev` starts. `TOKEN_NAME` and `TOKEN_EMAIL`
//! (`make token NAME="Ana Lima" EMAIL=ana@example.com`) add the `name` and `email` claims the API
//! records its members with.

use std::process::ExitCode;

use leadheat_domain::auth::{mint_jwt, Claims, MAX_TOKEN_LIFETIME_SECS};
use leadheat_domain::types::Role;
use leadheat_e2e::{unix_now, workspace_root};
use serde_json::Value;

const USAGE: &str = "usage: devtoken <org> <admin|member|viewer> [user] [hours]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(org), Some(role)) = (args.first(), args.get(1)) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let role: Role = match role.parse() {
        Ok(role) => role,
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let user = args
        .get(2)
        .cloned()
        .unwrap_or_else(|| format!("dev-{role}"));
    let hours: i64 = match args.get(3).map(|h| h.parse()) {
        None => 12,
        Some(Ok(hours)) if hours > 0 && hours <= MAX_TOKEN_LIFETIME_SECS / 3600 => hours,
        Some(_) => {
            let max = MAX_TOKEN_LIFETIME_SECS / 3600;
            eprintln!("hours must be a whole number from 1 to {max} (the API refuses longer-lived tokens)\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let Some(secret) = jwt_secret() else {
        eprintln!("AUTH_JWT_SECRET is neither in the environment nor in .dev.vars; run `make dev` once to create .dev.vars");
        return ExitCode::FAILURE;
    };
    let now = unix_now();
    let claims = Claims {
        sub: user,
        org: org.clone(),
        role,
        exp: now + hours * 3600,
        iat: Some(now),
        nbf: None,
    };
    let profile: Vec<(&str, String)> = [("name", "TOKEN_NAME"), ("email", "TOKEN_EMAIL")]
        .into_iter()
        .filter_map(|(claim, var)| {
            Some((claim, std::env::var(var).ok().filter(|v| !v.is_empty())?))
        })
        .collect();
    if profile.is_empty() {
        println!("{}", mint_jwt(&claims, secret.as_bytes()));
    } else {
        let mut payload = serde_json::to_value(&claims).expect("claims serialise to JSON");
        for (claim, value) in profile {
            payload[claim] = Value::String(value);
        }
        println!("{}", leadheat_e2e::mint_jwt(&secret, &payload));
    }
    ExitCode::SUCCESS
}

fn jwt_secret() -> Option<String> {
    if let Ok(secret) = std::env::var("AUTH_JWT_SECRET") {
        return Some(secret);
    }
    let dev_vars = std::fs::read_to_string(workspace_root().join(".dev.vars")).ok()?;
    dev_vars.lines().find_map(|line| {
        let value = line.trim().strip_prefix("AUTH_JWT_SECRET=")?;
        Some(value.trim_matches('"').to_string())
    })
}
