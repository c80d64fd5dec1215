//! The LinkedIn payload parser (`platforms::parse` with `Platform::Linkedin`, i.e.
//! `platforms::linkedin::parse`), the URN helpers and the lead form response mapper
//! (`lead_forms::from_linkedin_response`) on arbitrary bodies.
#![no_main]

#[path = "common.rs"]
mod common;
#[path = "platform_common.rs"]
mod platform_common;

use leadheat_domain::lead_forms::from_linkedin_response;
use leadheat_domain::platforms::{linkedin, urn_id};
use leadheat_domain::types::Platform;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    platform_common::check(Platform::Linkedin, body);
    if let Some(value) = common::json(body) {
        // The body doubles as a response (and, when it has one, its `form`).
        let answers = from_linkedin_response(&value, value.get("form"));
        platform_common::check_answers(&answers);
        let _ = linkedin::owner_id(value.get("owner"));
        let mut texts = Vec::new();
        common::strings(&value, &mut texts);
        for text in texts.iter().take(64) {
            let _ = urn_id(text);
            let _ = linkedin::form_id(text);
        }
    }
});
