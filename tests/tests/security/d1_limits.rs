//! Security suite: d1_limits.

use leadheat_e2e::runner::E2eTest;

pub const TESTS: &[E2eTest] = &[];
