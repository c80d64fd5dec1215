//! The Instagram payload parser (`platforms::parse` with `Platform::Instagram`, i.e.
//! `platforms::instagram::parse`) on arbitrary bodies.
#![no_main]

#[path = "common.rs"]
mod common;
#[path = "platform_common.rs"]
mod platform_common;

use leadheat_domain::types::Platform;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    platform_common::check(Platform::Instagram, body);
});
