//! The Facebook payload parser (`platforms::parse` with `Platform::Facebook`, i.e.
//! `platforms::facebook::parse`) and the Graph lead `field_data` mapper
//! (`lead_forms::from_meta_field_data`) on arbitrary bodies.
#![no_main]

#[path = "common.rs"]
mod common;
#[path = "platform_common.rs"]
mod platform_common;

use leadheat_domain::lead_forms::from_meta_field_data;
use leadheat_domain::types::Platform;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    platform_common::check(Platform::Facebook, body);
    if let Some(value) = common::json(body) {
        let answers = from_meta_field_data(&value);
        platform_common::check_answers(&answers);
    }
});
