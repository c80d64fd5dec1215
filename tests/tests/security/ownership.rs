//! Security suite: ownership.

use leadheat_e2e::runner::E2eTest;

pub const TESTS: &[E2eTest] = &[];
