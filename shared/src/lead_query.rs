//! The query strings of the list endpoints, parsed and validated: the lead list's filters and
//! sort (the API contract: README and OpenAPI), a lead's timeline and the org's social feed. Every problem names its
//! parameter.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use serde_json::Value;

use crate::cursor::Cursor;
use crate::custom_fields::is_valid_key;
use crate::d1_limits::MAX_BOUND_PARAMETERS;
use crate::types::{FieldError, HeatLevel, InteractionType, Platform, Source};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;
/// Longest accepted free-text query.
pub const MAX_Q_LEN: usize = 200;
/// Custom field filters (`cf.<key>=value`) one list query may carry. Each binds two parameters of
/// the list's statement; with everything else it binds ([`LIST_OTHER_PARAMETERS`]) the statement
/// stays under D1's 100 bound parameters.
pub const MAX_CUSTOM_FILTERS: usize = 20;
/// The most parameters the lead list's statement (`store::leads::list`) binds besides its custom
/// field filters: the org, heat levels, sources, stage, owner, tags, two scores, four times, the
/// text search, a cursor of up to three values and the limit.
pub const LIST_OTHER_PARAMETERS: usize = 17;

const _: () = assert!(LIST_OTHER_PARAMETERS + 2 * MAX_CUSTOM_FILTERS <= MAX_BOUND_PARAMETERS);

/// What the lead list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    HeatScore,
    LastInteractionAt,
    CreatedAt,
    /// Last name, then first name (case-insensitive).
    Name,
}

impl SortField {
    pub const ALL: [SortField; 4] = [
        SortField::HeatScore,
        SortField::LastInteractionAt,
        SortField::CreatedAt,
        SortField::Name,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SortField::HeatScore => "heat_score",
            SortField::LastInteractionAt => "last_interaction_at",
            SortField::CreatedAt => "created_at",
            SortField::Name => "name",
        }
    }

    /// How many key values a cursor for this sort carries (before the id).
    pub fn key_len(self) -> usize {
        match self {
            SortField::Name => 2,
            _ => 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub field: SortField,
    pub descending: bool,
}

impl Sort {
    /// The default view: hottest first.
    pub const DEFAULT: Sort = Sort {
        field: SortField::HeatScore,
        descending: true,
    };

    /// `heat_score`, `-heat_score`, ... (the wire form, also the cursor's ordering tag).
    pub fn wire(self) -> String {
        format!(
            "{}{}",
            if self.descending { "-" } else { "" },
            self.field.as_str()
        )
    }

    pub fn parse(raw: &str) -> Result<Sort, String> {
        let (descending, name) = match raw.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, raw.strip_prefix('+').unwrap_or(raw)),
        };
        SortField::ALL
            .into_iter()
            .find(|f| f.as_str() == name)
            .map(|field| Sort { field, descending })
            .ok_or_else(|| {
                "must be one of heat_score, last_interaction_at, created_at, name, with a leading - for descending"
                    .to_string()
            })
    }
}

/// A filter on a custom field: `cf.<key>=<value>` (checked against the definitions by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomFieldFilter {
    pub key: String,
    pub value: String,
}

/// A validated `GET /v1/leads` query. Times are RFC 3339 strings in the storage format, so they
/// compare with stored values as text.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadQuery {
    pub q: Option<String>,
    /// The FTS5 MATCH expression for `q`: every word as a quoted prefix, all required.
    pub fts: Option<String>,
    pub heat_levels: Vec<HeatLevel>,
    pub sources: Vec<Source>,
    pub stage_id: Option<String>,
    pub owner_id: Option<String>,
    pub tags: Vec<String>,
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    /// Inclusive lower / upper bounds on `created_at`.
    pub created_from: Option<String>,
    pub created_to: Option<String>,
    /// Inclusive lower / upper bounds on `last_interaction_at` (a lead without any is excluded).
    pub last_interaction_from: Option<String>,
    pub last_interaction_to: Option<String>,
    pub custom: Vec<CustomFieldFilter>,
    pub sort: Sort,
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

/// Parses the lead list's query parameters. Unknown parameters are ignored; list parameters
/// (`heat_level`, `source`, `tag`) accept comma-separated values.
pub fn parse_lead_query(params: &HashMap<String, String>) -> Result<LeadQuery, Vec<FieldError>> {
    let get = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut errors = Vec::new();

    let q = get("q").map(str::to_string);
    let mut fts = None;
    if let Some(q) = &q {
        if q.chars().count() > MAX_Q_LEN {
            errors.push(FieldError::new("q", "must be at most 200 characters"));
        } else {
            fts = fts_prefix_query(q);
        }
    }

    let heat_levels = list(get("heat_level"), "heat_level", &mut errors, |v| {
        v.to_ascii_uppercase()
            .parse::<HeatLevel>()
            .map_err(|e| e.to_string())
    });
    let sources = list(get("source"), "source", &mut errors, |v| {
        v.parse::<Source>().map_err(|e| e.to_string())
    });
    let tags = list(get("tag"), "tag", &mut errors, |v| Ok(v.to_string()));

    let min_score = number(get("min_score"), "min_score", &mut errors);
    let max_score = number(get("max_score"), "max_score", &mut errors);
    if let (Some(min), Some(max)) = (min_score, max_score) {
        if min > max {
            errors.push(FieldError::new("max_score", "must be at least min_score"));
        }
    }

    let mut time = |names: &[&str], end_of_day: bool| {
        let found = names.iter().find_map(|n| get(n).map(|v| (*n, v)));
        found.and_then(|(name, value)| match parse_time(value, end_of_day) {
            Ok(time) => Some(time),
            Err(message) => {
                errors.push(FieldError::new(name, message));
                None
            }
        })
    };
    let created_from = time(&["created_from", "created_after"], false);
    let created_to = time(&["created_to", "created_before"], true);
    let last_interaction_from = time(&["last_interaction_from", "last_interaction_after"], false);
    let last_interaction_to = time(&["last_interaction_to", "last_interaction_before"], true);

    let mut custom = Vec::new();
    if let Err(error) = check_custom_filter_count(params) {
        errors.push(error);
    }
    let mut keys: Vec<&String> = params.keys().filter(|k| k.starts_with("cf.")).collect();
    keys.sort();
    for name in keys.into_iter().take(MAX_CUSTOM_FILTERS) {
        let key = &name[3..];
        if !is_valid_key(key) {
            errors.push(FieldError::new(name.clone(), "is not a custom field key"));
        } else if let Some(value) = get(name) {
            custom.push(CustomFieldFilter {
                key: key.to_string(),
                value: value.to_string(),
            });
        }
    }

    let sort = match get("sort") {
        None => Sort::DEFAULT,
        Some(raw) => Sort::parse(raw).unwrap_or_else(|message| {
            errors.push(FieldError::new("sort", message));
            Sort::DEFAULT
        }),
    };
    let limit = parse_limit(get("limit"), &mut errors);
    let cursor = get("cursor").and_then(|raw| {
        match Cursor::decode_for(raw, &sort.wire(), sort.field.key_len()) {
            Ok(cursor) if cursor_key_fits(sort.field, &cursor.key) => Some(cursor),
            Ok(_) => {
                errors.push(FieldError::new("cursor", "the cursor is malformed"));
                None
            }
            Err(error) => {
                errors.push(FieldError::new("cursor", error.to_string()));
                None
            }
        }
    });

    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(LeadQuery {
        q,
        fts,
        heat_levels,
        sources,
        stage_id: get("stage_id").map(str::to_string),
        owner_id: get("owner_id").map(str::to_string),
        tags,
        min_score,
        max_score,
        created_from,
        created_to,
        last_interaction_from,
        last_interaction_to,
        custom,
        sort,
        limit,
        cursor,
    })
}

/// At most [`MAX_CUSTOM_FILTERS`] `cf.*` parameters; the error names the first one past the
/// maximum (in key order). A query over it is refused before anything else: the store could not
/// run it (too many bound parameters for D1).
pub fn check_custom_filter_count(params: &HashMap<String, String>) -> Result<(), FieldError> {
    let mut keys: Vec<&String> = params.keys().filter(|k| k.starts_with("cf.")).collect();
    if keys.len() <= MAX_CUSTOM_FILTERS {
        return Ok(());
    }
    keys.sort();
    Err(FieldError::new(
        keys[MAX_CUSTOM_FILTERS].clone(),
        format!(
            "a list query may filter on at most {MAX_CUSTOM_FILTERS} custom fields; it has {}",
            keys.len()
        ),
    ))
}

/// Lead cursors carry strings only (scores as their exact decimal text).
fn cursor_key_fits(field: SortField, key: &[Value]) -> bool {
    match field {
        SortField::HeatScore => key
            .first()
            .and_then(Value::as_str)
            .is_some_and(|s| s.parse::<f64>().is_ok_and(f64::is_finite)),
        _ => key.iter().all(Value::is_string),
    }
}

/// The FTS5 expression for free text: each word (letters and digits) becomes a quoted prefix
/// term, and all must match. `None` when the text has no word at all.
pub fn fts_prefix_query(q: &str) -> Option<String> {
    let terms: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(10)
        .map(|w| format!("\"{}\"*", w.to_lowercase()))
        .collect();
    (!terms.is_empty()).then(|| terms.join(" "))
}

/// A validated timeline or feed query.
#[derive(Debug, Clone, PartialEq)]
pub struct InteractionQuery {
    pub types: Vec<InteractionType>,
    pub platforms: Vec<Platform>,
    /// Inclusive bounds on `occurred_at`, in the storage format.
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: u32,
    pub cursor: Option<Cursor>,
}

/// The cursor ordering tags of the interaction lists (newest first).
pub const TIMELINE_SORT: &str = "-occurred_at";

/// Parses `type`, `platform`, `from`, `to`, `limit`, `cursor` of a timeline (or the feed, with
/// `social_only`: types and platforms must then be social ones).
pub fn parse_interaction_query(
    params: &HashMap<String, String>,
    social_only: bool,
) -> Result<InteractionQuery, Vec<FieldError>> {
    let get = |name: &str| params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut errors = Vec::new();
    let types = list(get("type"), "type", &mut errors, |v| {
        let kind = v.parse::<InteractionType>().map_err(|e| e.to_string())?;
        if social_only && !kind.is_social() {
            return Err(format!("{kind} is not a social touchpoint type"));
        }
        Ok(kind)
    });
    let platforms = list(get("platform"), "platform", &mut errors, |v| {
        let platform = v.parse::<Platform>().map_err(|e| e.to_string())?;
        if social_only && !platform.is_social() {
            return Err(format!(
                "{platform} is not a social platform; expected facebook, instagram or linkedin"
            ));
        }
        Ok(platform)
    });
    let mut time = |name: &str, end_of_day: bool| {
        get(name).and_then(|value| match parse_time(value, end_of_day) {
            Ok(time) => Some(time),
            Err(message) => {
                errors.push(FieldError::new(name, message));
                None
            }
        })
    };
    let from = time("from", false);
    let to = time("to", true);
    let limit = parse_limit(get("limit"), &mut errors);
    let cursor = get("cursor").and_then(|raw| match Cursor::decode_for(raw, TIMELINE_SORT, 1) {
        Ok(cursor) if cursor.key.iter().all(Value::is_string) => Some(cursor),
        Ok(_) => {
            errors.push(FieldError::new("cursor", "the cursor is malformed"));
            None
        }
        Err(error) => {
            errors.push(FieldError::new("cursor", error.to_string()));
            None
        }
    });
    if errors.is_empty() {
        Ok(InteractionQuery {
            types,
            platforms,
            from,
            to,
            limit,
            cursor,
        })
    } else {
        Err(errors)
    }
}

/// An instant in the storage format (RFC 3339, UTC, milliseconds, `Z`).
pub fn storage_time(instant: DateTime<Utc>) -> String {
    instant.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An RFC 3339 instant, or a date `YYYY-MM-DD` (its start, or with `end_of_day` its last
/// millisecond), in the storage format.
///
/// Only four-digit years (0000 to 9999 in UTC) are accepted: others would be written `-0602-...`
/// or `+10000-...`, which do not compare as text with stored times (found by the `lead_query`
/// fuzz target).
pub fn parse_time(value: &str, end_of_day: bool) -> Result<String, String> {
    let four_digit_year = |instant: DateTime<Utc>| (0..=9999).contains(&instant.year());
    if let Ok(instant) = DateTime::parse_from_rfc3339(value) {
        let instant = instant.with_timezone(&Utc);
        if four_digit_year(instant) {
            return Ok(storage_time(instant));
        }
    } else if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let time = if end_of_day {
            date.and_hms_milli_opt(23, 59, 59, 999)
        } else {
            date.and_hms_opt(0, 0, 0)
        };
        if let Some(time) = time.map(|t| t.and_utc()).filter(|t| four_digit_year(*t)) {
            return Ok(storage_time(time));
        }
    }
    Err("must be an RFC 3339 time (2026-03-01T12:00:00Z) or a date (2026-03-01)".to_string())
}

fn parse_limit(raw: Option<&str>, errors: &mut Vec<FieldError>) -> u32 {
    match raw {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<u32>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => limit,
            _ => {
                errors.push(FieldError::new("limit", "must be an integer from 1 to 200"));
                DEFAULT_LIMIT
            }
        },
    }
}

fn number(raw: Option<&str>, name: &str, errors: &mut Vec<FieldError>) -> Option<f64> {
    let raw = raw?;
    match raw.parse::<f64>() {
        Ok(number) if number.is_finite() => Some(number),
        _ => {
            errors.push(FieldError::new(name, "must be a number"));
            None
        }
    }
}

fn list<T: PartialEq>(
    raw: Option<&str>,
    name: &str,
    errors: &mut Vec<FieldError>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Vec<T> {
    let mut out = Vec::new();
    for item in raw
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match parse(item) {
            Ok(value) => {
                if !out.contains(&value) {
                    out.push(value);
                }
            }
            Err(message) => errors.push(FieldError::new(name, message)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let query = parse_lead_query(&HashMap::new()).unwrap();
        assert_eq!(query.sort, Sort::DEFAULT);
        assert_eq!(query.limit, 50);
        assert!(query.cursor.is_none() && query.fts.is_none());
    }

    #[test]
    fn at_most_twenty_custom_field_filters() {
        let names: Vec<String> = (0..45).map(|i| format!("cf.f{i:02}")).collect();
        let within: Vec<(&str, &str)> = names[..MAX_CUSTOM_FILTERS]
            .iter()
            .map(|n| (n.as_str(), "x"))
            .collect();
        assert_eq!(check_custom_filter_count(&params(&within)), Ok(()));
        assert_eq!(parse_lead_query(&params(&within)).unwrap().custom.len(), 20);

        let over: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "x")).collect();
        let error = check_custom_filter_count(&params(&over)).unwrap_err();
        assert_eq!(error.field, "cf.f20");
        assert!(error.message.contains("at most 20"), "{}", error.message);
        let errors = parse_lead_query(&params(&over)).unwrap_err();
        assert!(errors.iter().any(|e| e.field == "cf.f20"), "{errors:?}");
    }

    #[test]
    fn every_filter_parses() {
        let query = parse_lead_query(&params(&[
            ("q", "Ada  Lov@"),
            ("heat_level", "HOT,warm"),
            ("source", "facebook"),
            ("stage_id", "stg_1"),
            ("owner_id", "u1"),
            ("tag", "vip"),
            ("min_score", "5"),
            ("max_score", "20.5"),
            ("created_from", "2026-01-01"),
            ("created_to", "2026-01-31"),
            ("last_interaction_after", "2026-01-02T03:04:05+01:00"),
            ("cf.tier", "gold"),
            ("sort", "-name"),
            ("limit", "200"),
        ]))
        .unwrap();
        assert_eq!(query.fts.as_deref(), Some("\"ada\"* \"lov\"*"));
        assert_eq!(query.heat_levels, vec![HeatLevel::Hot, HeatLevel::Warm]);
        assert_eq!(query.sources, vec![Source::Facebook]);
        assert_eq!(query.tags, vec!["vip"]);
        assert_eq!((query.min_score, query.max_score), (Some(5.0), Some(20.5)));
        assert_eq!(
            query.created_from.as_deref(),
            Some("2026-01-01T00:00:00.000Z")
        );
        assert_eq!(
            query.created_to.as_deref(),
            Some("2026-01-31T23:59:59.999Z")
        );
        assert_eq!(
            query.last_interaction_from.as_deref(),
            Some("2026-01-02T02:04:05.000Z")
        );
        assert_eq!(
            query.custom,
            vec![CustomFieldFilter {
                key: "tier".into(),
                value: "gold".into()
            }]
        );
        assert_eq!(
            query.sort,
            Sort {
                field: SortField::Name,
                descending: true
            }
        );
        assert_eq!(query.limit, 200);
    }

    #[test]
    fn bad_parameters_are_named() {
        let errors = parse_lead_query(&params(&[
            ("heat_level", "LUKEWARM"),
            ("source", "tv"),
            ("min_score", "x"),
            ("created_from", "yesterday"),
            ("cf.Bad-Key", "1"),
            ("sort", "colour"),
            ("limit", "0"),
            ("cursor", "%%%"),
        ]))
        .unwrap_err();
        let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for name in [
            "heat_level",
            "source",
            "min_score",
            "created_from",
            "cf.Bad-Key",
            "sort",
            "limit",
            "cursor",
        ] {
            assert!(names.contains(&name), "{name} not in {names:?}");
        }
        assert!(parse_lead_query(&params(&[("limit", "201")])).is_err());
        assert!(parse_lead_query(&params(&[("min_score", "9"), ("max_score", "1")])).is_err());
    }

    #[test]
    fn cursors_must_match_the_sort() {
        let cursor = Cursor::new("-heat_score", vec![Value::from("12.5")], "lead_1").encode();
        let ok = parse_lead_query(&params(&[("cursor", &cursor)])).unwrap();
        assert_eq!(ok.cursor.unwrap().id, "lead_1");
        assert!(parse_lead_query(&params(&[("cursor", &cursor), ("sort", "created_at")])).is_err());
        let bad = Cursor::new("-heat_score", vec![Value::from("hot")], "lead_1").encode();
        assert!(parse_lead_query(&params(&[("cursor", &bad)])).is_err());
    }

    #[test]
    fn interaction_queries() {
        let query = parse_interaction_query(
            &params(&[
                ("type", "social_like,price_quote"),
                ("platform", "email"),
                ("from", "2026-01-01"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(
            query.types,
            vec![InteractionType::SocialLike, InteractionType::PriceQuote]
        );
        assert_eq!(query.platforms, vec![Platform::Email]);
        let errors = parse_interaction_query(
            &params(&[("type", "price_quote"), ("platform", "email")]),
            true,
        )
        .unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(parse_interaction_query(&params(&[("type", "nope")]), false).is_err());
    }

    proptest! {
        #[test]
        fn sorts_round_trip(index in 0usize..4, descending: bool) {
            let sort = Sort { field: SortField::ALL[index], descending };
            prop_assert_eq!(Sort::parse(&sort.wire()).unwrap(), sort);
        }

        #[test]
        fn arbitrary_parameters_never_panic(
            pairs in prop::collection::vec(("(q|sort|limit|cursor|heat_level|source|min_score|created_from|cf\\.[a-z]{1,3}|tag)", ".{0,30}"), 0..8)
        ) {
            let map: HashMap<String, String> = pairs.into_iter().collect();
            let _ = parse_lead_query(&map);
            let _ = parse_interaction_query(&map, true);
        }

        #[test]
        fn fts_queries_only_hold_quoted_words(q in ".{0,60}") {
            if let Some(fts) = fts_prefix_query(&q) {
                for term in fts.split(' ') {
                    prop_assert!(term.starts_with('"') && term.ends_with("\"*"));
                    prop_assert!(!term[1..term.len() - 2].contains('"'));
                }
            }
        }
    }
}
