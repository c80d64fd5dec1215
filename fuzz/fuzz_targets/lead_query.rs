//! The list filters (`lead_query::parse_lead_query`, `parse_interaction_query`,
//! `fts_prefix_query`, `parse_time`, `Sort::parse`) on arbitrary query pairs.
//!
//! Parameter names are drawn mostly from the real ones (plus `cf.<key>` and arbitrary names), so
//! the fuzzer spends its time on the values. Oracles: never panics; an accepted query respects its
//! limits (limit in 1..=MAX_LIMIT, min <= max score, q at most MAX_Q_LEN characters); the FTS5
//! expression can only ever be a list of quoted prefix terms (no quote, operator or column filter
//! can be injected); times come out in the storage format; sorts round-trip through their wire
//! form.
#![no_main]

use std::collections::HashMap;

use arbitrary::Arbitrary;
use chrono::DateTime;
use leadheat_domain::lead_query::{
    fts_prefix_query, parse_interaction_query, parse_lead_query, parse_time, Sort, MAX_LIMIT,
    MAX_Q_LEN,
};
use libfuzzer_sys::fuzz_target;

const NAMES: &[&str] = &[
    "q",
    "heat_level",
    "source",
    "stage_id",
    "owner_id",
    "tag",
    "min_score",
    "max_score",
    "sort",
    "limit",
    "cursor",
    "created_from",
    "created_after",
    "created_to",
    "created_before",
    "last_interaction_from",
    "last_interaction_after",
    "last_interaction_to",
    "last_interaction_before",
    "type",
    "platform",
    "from",
    "to",
    "cf.budget",
    "cf.",
];

#[derive(Debug, Arbitrary)]
enum Name {
    Known(u8),
    Custom(String),
    Other(String),
}

#[derive(Debug, Arbitrary)]
struct Input {
    pairs: Vec<(Name, String)>,
}

fn check_fts(fts: &str) {
    for term in fts.split(' ') {
        let inner = term
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix("\"*"))
            .unwrap_or_else(|| panic!("FTS term {term:?} is not a quoted prefix"));
        assert!(
            !inner.is_empty() && !inner.contains('"'),
            "FTS term {term:?}"
        );
    }
}

fn check_time(text: &str) {
    let parsed = DateTime::parse_from_rfc3339(text).expect("storage times are RFC 3339");
    assert!(text.ends_with('Z'));
    let _ = parsed;
}

fuzz_target!(|input: Input| {
    let mut params = HashMap::new();
    for (name, value) in input.pairs {
        let name = match name {
            Name::Known(i) => NAMES[i as usize % NAMES.len()].to_string(),
            Name::Custom(key) => format!("cf.{key}"),
            Name::Other(name) => name,
        };
        let _ = fts_prefix_query(&value).map(|f| check_fts(&f));
        if let Ok(time) = parse_time(&value, value.len() % 2 == 0) {
            check_time(&time);
        }
        if let Ok(sort) = Sort::parse(&value) {
            assert_eq!(Sort::parse(&sort.wire()), Ok(sort));
        }
        params.insert(name, value);
    }

    match parse_lead_query(&params) {
        Ok(query) => {
            assert!((1..=MAX_LIMIT).contains(&query.limit));
            if let (Some(min), Some(max)) = (query.min_score, query.max_score) {
                assert!(min <= max);
            }
            if let Some(q) = &query.q {
                assert!(q.chars().count() <= MAX_Q_LEN);
            }
            assert!(query.fts.is_none() || query.q.is_some());
            if let Some(fts) = &query.fts {
                check_fts(fts);
            }
            for time in [
                &query.created_from,
                &query.created_to,
                &query.last_interaction_from,
                &query.last_interaction_to,
            ]
            .into_iter()
            .flatten()
            {
                check_time(time);
            }
            for filter in &query.custom {
                assert!(leadheat_domain::custom_fields::is_valid_key(&filter.key));
            }
            if let Some(cursor) = &query.cursor {
                assert_eq!(cursor.sort, query.sort.wire());
            }
        }
        Err(errors) => assert!(!errors.is_empty() && errors.iter().all(|e| !e.field.is_empty())),
    }
    for social_only in [false, true] {
        match parse_interaction_query(&params, social_only) {
            Ok(query) => {
                assert!((1..=MAX_LIMIT).contains(&query.limit));
                if social_only {
                    assert!(query.types.iter().all(|t| t.is_social()));
                    assert!(query.platforms.iter().all(|p| p.is_social()));
                }
                for time in [&query.from, &query.to].into_iter().flatten() {
                    check_time(time);
                }
            }
            Err(errors) => assert!(!errors.is_empty()),
        }
    }
});
