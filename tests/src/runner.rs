//! Runs a binary's end-to-end tests against one shared runtime with libtest-mimic, so the output,
//! filters and exit code are cargo test's, and the runtime is stopped after the last test even when
//! tests fail.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

use crate::Runtime;

/// One end-to-end test: a name and a function that panics on failure.
pub type E2eTest = (&'static str, fn(&Runtime));

/// Runs `tests` against `runtime`, stops the runtime, and exits with cargo test's conventions.
pub fn run(runtime: Runtime, tests: &[E2eTest]) -> ! {
    run_with(runtime, tests, Arguments::from_args())
}

/// Like [`run`], one test at a time: for tests whose outcome depends on what the runtime did
/// before them (the directory places each new org by every org placed so far).
pub fn run_serially(runtime: Runtime, tests: &[E2eTest]) -> ! {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    run_with(runtime, tests, args)
}

fn run_with(runtime: Runtime, tests: &[E2eTest], args: Arguments) -> ! {
    let runtime = Arc::new(runtime);
    let trials = tests
        .iter()
        .map(|&(name, test)| {
            let runtime = Arc::clone(&runtime);
            Trial::test(name, move || {
                catch_unwind(AssertUnwindSafe(|| test(&runtime))).map_err(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "test panicked".to_string());
                    Failed::from(message)
                })
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    match Arc::try_unwrap(runtime) {
        Ok(runtime) => drop(runtime),
        Err(_) => unreachable!("every trial has finished and released the runtime"),
    }
    conclusion.exit()
}
