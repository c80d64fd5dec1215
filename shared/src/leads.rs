//! Lead input: validation and normalization of the writable lead fields (create and patch), and
//! the normalized keys leads are matched (deduplicated) on.
//!
//! Bodies are validated field by field from a JSON object, so every problem names its field
//! (`email`, `tags[2]`, `social_profiles[0].platform_user_id`) and all of them are reported at once.
//! Custom field values are only shape-checked here (an object); they are validated against the
//! org's definitions by [`crate::custom_fields`].

use serde::Serialize;
use serde_json::{Map, Value};

use crate::body::{self, Fields};
use crate::types::{FieldError, Platform, Source};

/// Longest accepted name, company, title, owner or stage id.
pub const MAX_TEXT_LEN: usize = 200;
/// Longest accepted email address (RFC 5321 path limit).
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest accepted URL.
pub const MAX_URL_LEN: usize = 2048;
/// Most tags on one lead, and the longest tag.
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_LEN: usize = 50;
/// Most social profiles on one lead.
pub const MAX_SOCIAL_PROFILES: usize = 20;
/// Most keys in `source_detail`, and the longest value.
pub const MAX_SOURCE_DETAIL_KEYS: usize = 20;
pub const MAX_SOURCE_DETAIL_VALUE_LEN: usize = 500;
/// Phone numbers have 6 to 15 digits (E.164 allows at most 15).
pub const MIN_PHONE_DIGITS: usize = 6;
pub const MAX_PHONE_DIGITS: usize = 15;

/// Fields of the lead JSON that clients may send back unchanged but cannot write: ignored.
pub const READ_ONLY_FIELDS: &[&str] = &[
    "id",
    "position",
    "heat_score",
    "heat_level",
    "heat_trend",
    "last_interaction_at",
    "created_at",
    "updated_at",
    "version",
];

/// The writable fields, in the order errors and docs list them.
pub const WRITABLE_FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "title",
    "source",
    "source_detail",
    "stage_id",
    "owner_id",
    "tags",
    "custom_fields",
    "social_profiles",
];

/// One identity of a lead on a platform; `(platform, platform_user_id)` is unique per org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SocialProfileInput {
    pub platform: Platform,
    pub platform_user_id: String,
    pub handle: Option<String>,
    pub url: Option<String>,
}

/// A validated new lead (or the data a webhook learned about one), before matching.
#[derive(Debug, Clone, PartialEq)]
pub struct LeadInput {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Trimmed; use [`LeadInput::email_normalized`] for matching.
    pub email: Option<String>,
    /// Trimmed, as given; use [`LeadInput::phone_normalized`] for matching.
    pub phone: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
    pub source: Source,
    pub source_detail: Map<String, Value>,
    pub stage_id: Option<String>,
    pub owner_id: Option<String>,
    pub tags: Vec<String>,
    /// Validated against the org's definitions by the caller (the API); webhooks send none.
    pub custom_fields: Map<String, Value>,
    pub social_profiles: Vec<SocialProfileInput>,
}

impl LeadInput {
    /// An empty lead from `source`; callers fill in what they know.
    pub fn new(source: Source) -> Self {
        Self {
            first_name: None,
            last_name: None,
            email: None,
            phone: None,
            company: None,
            title: None,
            source,
            source_detail: Map::new(),
            stage_id: None,
            owner_id: None,
            tags: Vec::new(),
            custom_fields: Map::new(),
            social_profiles: Vec::new(),
        }
    }

    /// The matching key of the email (`None` when absent or not a valid address).
    pub fn email_normalized(&self) -> Option<String> {
        self.email.as_deref().and_then(|e| normalize_email(e).ok())
    }

    /// The matching key of the phone (`None` when absent or not a valid number).
    pub fn phone_normalized(&self) -> Option<String> {
        self.phone.as_deref().and_then(|p| normalize_phone(p).ok())
    }
}

/// A field of a patch: absent (keep), `null` (clear) or a new value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Change<T> {
    #[default]
    Keep,
    Clear,
    Set(T),
}

impl<T> Change<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Change::Keep)
    }

    /// The new value of an optional field whose current value is `current`.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Change::Keep => current,
            Change::Clear => None,
            Change::Set(value) => Some(value),
        }
    }
}

/// A validated `PATCH` body (JSON merge patch semantics): absent fields are kept, `null` clears an
/// optional field, `tags` and `social_profiles` replace the whole list, and `custom_fields` merges
/// key by key (a `null` value removes the key).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LeadPatch {
    pub first_name: Change<String>,
    pub last_name: Change<String>,
    pub email: Change<String>,
    pub phone: Change<String>,
    pub company: Change<String>,
    pub title: Change<String>,
    pub source: Option<Source>,
    pub source_detail: Option<Map<String, Value>>,
    pub stage_id: Change<String>,
    pub owner_id: Change<String>,
    pub tags: Option<Vec<String>>,
    /// Raw values (nulls included): validated against the definitions by the caller.
    pub custom_fields: Option<Map<String, Value>>,
    pub social_profiles: Option<Vec<SocialProfileInput>>,
}

impl LeadPatch {
    pub fn is_empty(&self) -> bool {
        *self == LeadPatch::default()
    }
}

impl Source {
    /// The source of a lead that first came from `platform` (a social platform's own; other
    /// channels say nothing about where a lead came from).
    pub fn of_platform(platform: Platform) -> Source {
        match platform {
            Platform::Facebook => Source::Facebook,
            Platform::Instagram => Source::Instagram,
            Platform::Linkedin => Source::Linkedin,
            _ => Source::Other,
        }
    }
}

/// Validates a create body. `source` defaults to `other`; at least one identifying field (a name,
/// email, phone, company or social profile) is required.
pub fn parse_create(body: &Value) -> Result<LeadInput, Vec<FieldError>> {
    let object = as_object(body)?;
    let mut errors = Vec::new();
    check_unknown_fields(object, &mut errors);

    let mut input = LeadInput::new(Source::Other);
    input.first_name = opt_text(object, "first_name", &mut errors).flatten();
    input.last_name = opt_text(object, "last_name", &mut errors).flatten();
    input.email = opt_email(object, &mut errors).flatten();
    input.phone = opt_phone(object, &mut errors).flatten();
    input.company = opt_text(object, "company", &mut errors).flatten();
    input.title = opt_text(object, "title", &mut errors).flatten();
    if let Some(source) = opt_source(object, &mut errors) {
        input.source = source;
    }
    if let Some(detail) = opt_source_detail(object, &mut errors) {
        input.source_detail = detail;
    }
    input.stage_id = opt_text(object, "stage_id", &mut errors).flatten();
    input.owner_id = opt_text(object, "owner_id", &mut errors).flatten();
    if let Some(tags) = opt_tags(object, &mut errors) {
        input.tags = tags;
    }
    if let Some(values) = opt_custom_fields(object, &mut errors) {
        input.custom_fields = values.into_iter().filter(|(_, v)| !v.is_null()).collect();
    }
    if let Some(profiles) = opt_social_profiles(object, &mut errors) {
        input.social_profiles = profiles;
    }

    if errors.is_empty()
        && input.first_name.is_none()
        && input.last_name.is_none()
        && input.email.is_none()
        && input.phone.is_none()
        && input.company.is_none()
        && input.social_profiles.is_empty()
    {
        errors.push(FieldError::new(
            "body",
            "a lead needs at least one of first_name, last_name, email, phone, company or social_profiles",
        ));
    }
    if errors.is_empty() {
        Ok(input)
    } else {
        Err(errors)
    }
}

/// Validates a patch body (see [`LeadPatch`]).
pub fn parse_patch(body: &Value) -> Result<LeadPatch, Vec<FieldError>> {
    let object = as_object(body)?;
    let mut errors = Vec::new();
    check_unknown_fields(object, &mut errors);

    let change = |value: Option<Option<String>>| match value {
        None => Change::Keep,
        Some(None) => Change::Clear,
        Some(Some(v)) => Change::Set(v),
    };
    let mut patch = LeadPatch {
        first_name: change(opt_text(object, "first_name", &mut errors)),
        last_name: change(opt_text(object, "last_name", &mut errors)),
        email: change(opt_email(object, &mut errors)),
        phone: change(opt_phone(object, &mut errors)),
        company: change(opt_text(object, "company", &mut errors)),
        title: change(opt_text(object, "title", &mut errors)),
        stage_id: change(opt_text(object, "stage_id", &mut errors)),
        owner_id: change(opt_text(object, "owner_id", &mut errors)),
        ..LeadPatch::default()
    };
    if object.get("source").is_some_and(Value::is_null) {
        errors.push(FieldError::new("source", "cannot be null"));
    } else {
        patch.source = opt_source(object, &mut errors);
    }
    patch.source_detail = opt_source_detail(object, &mut errors);
    patch.tags = opt_tags(object, &mut errors);
    patch.custom_fields = opt_custom_fields(object, &mut errors);
    patch.social_profiles = opt_social_profiles(object, &mut errors);
    if errors.is_empty() {
        Ok(patch)
    } else {
        Err(errors)
    }
}

/// Trims and lower-cases an email and checks its shape (`local@domain.tld`, no spaces).
pub fn normalize_email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err("must not be empty");
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err("must be at most 254 characters");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be an email address like name@example.com");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err("must be an email address like name@example.com");
    };
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || c == '-');
    if local.is_empty() || local.len() > 64 || !domain_ok {
        return Err("must be an email address like name@example.com");
    }
    Ok(email)
}

/// The E.164-ish matching key of a phone number: `+` and digits when it has a country code (a
/// leading `+` or `00`), digits alone otherwise. Spaces, dashes, dots and parentheses are ignored;
/// anything else is refused.
pub fn normalize_phone(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    let (international, rest) = if let Some(rest) = trimmed.strip_prefix('+') {
        (true, rest)
    } else {
        (false, trimmed)
    };
    let mut digits = String::new();
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '/' => {}
            _ => return Err("must be a phone number of digits, with an optional leading +"),
        }
    }
    let (international, digits) = match digits.strip_prefix("00") {
        Some(rest) if !international => (true, rest.to_string()),
        _ => (international, digits),
    };
    if digits.len() < MIN_PHONE_DIGITS || digits.len() > MAX_PHONE_DIGITS {
        return Err("must have 6 to 15 digits");
    }
    Ok(if international {
        format!("+{digits}")
    } else {
        digits
    })
}

/// Whether `raw` is an absolute http(s) URL with a host and no whitespace.
pub fn is_http_url(raw: &str) -> bool {
    let rest = raw
        .strip_prefix("https://")
        .or_else(|| raw.strip_prefix("http://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty()
                && raw.len() <= MAX_URL_LEN
                && !raw.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// Trims, drops duplicates (keeping the first spelling) and checks each tag.
pub fn normalize_tags(values: &[Value], field: &str) -> Result<Vec<String>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut tags: Vec<String> = Vec::new();
    for (index, value) in values.iter().enumerate() {
        let name = format!("{field}[{index}]");
        match value.as_str().map(str::trim) {
            None => errors.push(FieldError::new(name, "must be a string")),
            Some("") => errors.push(FieldError::new(name, "must not be empty")),
            Some(tag) if tag.chars().count() > MAX_TAG_LEN => {
                errors.push(FieldError::new(name, "must be at most 50 characters"))
            }
            Some(tag) if tag.chars().any(char::is_control) => {
                errors.push(FieldError::new(name, "must not contain control characters"))
            }
            Some(tag) => {
                if !tags.iter().any(|t| t == tag) {
                    tags.push(tag.to_string());
                }
            }
        }
    }
    if tags.len() > MAX_TAGS {
        errors.push(FieldError::new(field, "at most 50 tags"));
    }
    if errors.is_empty() {
        Ok(tags)
    } else {
        Err(errors)
    }
}

/// Merges `extra` into `tags`, keeping order and dropping duplicates.
pub fn union_tags(tags: &[String], extra: &[String]) -> Vec<String> {
    let mut out = tags.to_vec();
    for tag in extra {
        if !out.contains(tag) {
            out.push(tag.clone());
        }
    }
    out
}

fn as_object(body: &Value) -> Result<&Map<String, Value>, Vec<FieldError>> {
    body::object(body).map_err(|error| vec![error])
}

/// Read-only fields are accepted and ignored, so a client can send back the lead it read.
fn check_unknown_fields(object: &Map<String, Value>, errors: &mut Vec<FieldError>) {
    let fields = Fields::exactly(WRITABLE_FIELDS).ignoring(READ_ONLY_FIELDS);
    errors.extend(body::unknown_fields(object, fields, ""));
}

/// An optional text field: `None` absent, `Some(None)` null or blank, `Some(Some(text))` trimmed.
fn opt_text(
    object: &Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Option<Option<String>> {
    match object.get(field)? {
        Value::Null => Some(None),
        Value::String(text) => {
            let text = text.trim();
            if text.is_empty() {
                Some(None)
            } else if text.chars().count() > MAX_TEXT_LEN {
                errors.push(FieldError::new(field, "must be at most 200 characters"));
                None
            } else if text.chars().any(char::is_control) {
                errors.push(FieldError::new(
                    field,
                    "must not contain control characters",
                ));
                None
            } else {
                Some(Some(text.to_string()))
            }
        }
        _ => {
            errors.push(FieldError::new(field, "must be a string or null"));
            None
        }
    }
}

fn opt_email(object: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<Option<String>> {
    let value = opt_text(object, "email", errors)?;
    match value {
        None => Some(None),
        Some(email) => match normalize_email(&email) {
            Ok(_) => Some(Some(email)),
            Err(message) => {
                errors.push(FieldError::new("email", message));
                None
            }
        },
    }
}

fn opt_phone(object: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<Option<String>> {
    let value = opt_text(object, "phone", errors)?;
    match value {
        None => Some(None),
        Some(phone) => match normalize_phone(&phone) {
            Ok(_) => Some(Some(phone)),
            Err(message) => {
                errors.push(FieldError::new("phone", message));
                None
            }
        },
    }
}

fn opt_source(object: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<Source> {
    match object.get("source")? {
        Value::Null => None,
        Value::String(text) => match text.parse::<Source>() {
            Ok(source) => Some(source),
            Err(error) => {
                errors.push(FieldError::new("source", error.to_string()));
                None
            }
        },
        _ => {
            errors.push(FieldError::new(
                "source",
                format!("must be one of: {}", Source::WIRE_NAMES.join(", ")),
            ));
            None
        }
    }
}

/// `source_detail`: an object of short scalar values (campaign, form, page, ...); null is `{}`.
fn opt_source_detail(
    object: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<Map<String, Value>> {
    match object.get("source_detail")? {
        Value::Null => Some(Map::new()),
        Value::Object(detail) => {
            let before = errors.len();
            if detail.len() > MAX_SOURCE_DETAIL_KEYS {
                errors.push(FieldError::new("source_detail", "at most 20 keys"));
            }
            for (key, value) in detail {
                let name = format!("source_detail.{key}");
                match value {
                    Value::String(text) if text.chars().count() > MAX_SOURCE_DETAIL_VALUE_LEN => {
                        errors.push(FieldError::new(
                            name.clone(),
                            "must be at most 500 characters",
                        ))
                    }
                    Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => {}
                    _ => errors.push(FieldError::new(
                        name.clone(),
                        "must be a string, number, boolean or null",
                    )),
                }
                if key.is_empty() || key.chars().count() > 64 {
                    errors.push(FieldError::new(name, "keys must have 1 to 64 characters"));
                }
            }
            (errors.len() == before).then(|| detail.clone())
        }
        _ => {
            errors.push(FieldError::new(
                "source_detail",
                "must be an object such as {\"campaign\": \"spring\", \"form\": \"demo\", \"page\": \"/pricing\"}",
            ));
            None
        }
    }
}

fn opt_tags(object: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<Vec<String>> {
    match object.get("tags")? {
        Value::Null => Some(Vec::new()),
        Value::Array(values) => match normalize_tags(values, "tags") {
            Ok(tags) => Some(tags),
            Err(mut found) => {
                errors.append(&mut found);
                None
            }
        },
        _ => {
            errors.push(FieldError::new("tags", "must be an array of strings"));
            None
        }
    }
}

fn opt_custom_fields(
    object: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<Map<String, Value>> {
    match object.get("custom_fields")? {
        Value::Null => Some(Map::new()),
        Value::Object(values) => Some(values.clone()),
        _ => {
            errors.push(FieldError::new("custom_fields", "must be an object"));
            None
        }
    }
}

fn opt_social_profiles(
    object: &Map<String, Value>,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<SocialProfileInput>> {
    let values = match object.get("social_profiles")? {
        Value::Null => return Some(Vec::new()),
        Value::Array(values) => values,
        _ => {
            errors.push(FieldError::new(
                "social_profiles",
                "must be an array of {platform, platform_user_id, handle?, url?}",
            ));
            return None;
        }
    };
    let before = errors.len();
    if values.len() > MAX_SOCIAL_PROFILES {
        errors.push(FieldError::new("social_profiles", "at most 20 profiles"));
    }
    let mut profiles: Vec<SocialProfileInput> = Vec::new();
    for (index, value) in values.iter().enumerate() {
        if let Some(profile) = parse_social_profile(value, index, errors) {
            if !profiles.iter().any(|p| {
                p.platform == profile.platform && p.platform_user_id == profile.platform_user_id
            }) {
                profiles.push(profile);
            }
        }
    }
    (errors.len() == before).then_some(profiles)
}

fn parse_social_profile(
    value: &Value,
    index: usize,
    errors: &mut Vec<FieldError>,
) -> Option<SocialProfileInput> {
    let prefix = format!("social_profiles[{index}]");
    let Some(object) = value.as_object() else {
        errors.push(FieldError::new(prefix, "must be an object"));
        return None;
    };
    let before = errors.len();
    let fields = Fields::exactly(&["platform", "platform_user_id", "handle", "url"]);
    errors.extend(body::unknown_fields(object, fields, &prefix));
    let platform = match object.get("platform").and_then(Value::as_str) {
        Some(text) => match text.parse::<Platform>() {
            Ok(platform) => Some(platform),
            Err(error) => {
                errors.push(FieldError::new(
                    format!("{prefix}.platform"),
                    error.to_string(),
                ));
                None
            }
        },
        None => {
            errors.push(FieldError::new(
                format!("{prefix}.platform"),
                "is required (a platform string)",
            ));
            None
        }
    };
    let user_id = match object.get("platform_user_id") {
        Some(Value::String(text))
            if !text.trim().is_empty() && text.trim().len() <= MAX_TEXT_LEN =>
        {
            Some(text.trim().to_string())
        }
        // Platform ids are often numbers in JSON; keep their exact digits.
        Some(Value::Number(number)) => Some(number.to_string()),
        _ => {
            errors.push(FieldError::new(
                format!("{prefix}.platform_user_id"),
                "is required: a non-empty string of at most 200 characters",
            ));
            None
        }
    };
    let handle = match object.get("handle") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.trim().len() <= MAX_TEXT_LEN => {
            Some(text.trim().to_string()).filter(|t| !t.is_empty())
        }
        _ => {
            errors.push(FieldError::new(
                format!("{prefix}.handle"),
                "must be a string of at most 200 characters",
            ));
            None
        }
    };
    let url = match object.get("url") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if is_http_url(text.trim()) => Some(text.trim().to_string()),
        _ => {
            errors.push(FieldError::new(
                format!("{prefix}.url"),
                "must be an http(s) URL",
            ));
            None
        }
    };
    if errors.len() != before {
        return None;
    }
    Some(SocialProfileInput {
        platform: platform?,
        platform_user_id: user_id?,
        handle,
        url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_name_the_writable_ones_and_read_only_ones_are_ignored() {
        let body = json!({"first_name": "Ada", "id": "lead_1", "heat_level": "HOT", "nick": "A",
                          "social_profiles": [{"platform": "facebook", "platform_user_id": "1", "x": 1}]});
        let errors = parse_create(&body).unwrap_err();
        assert_eq!(
            errors,
            [
                FieldError::new(
                    "nick",
                    format!(
                        "unknown field; expected one of: {}",
                        WRITABLE_FIELDS.join(", ")
                    )
                ),
                FieldError::new(
                    "social_profiles[0].x",
                    "unknown field; expected one of: platform, platform_user_id, handle, url"
                ),
            ]
        );
        assert_eq!(parse_patch(&json!({"nick": 1})).unwrap_err(), errors[..1]);
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn create_normalizes_and_defaults() {
        let input = parse_create(&json!({
            "first_name": "  Ada ", "email": " Ada@Example.COM ", "phone": "+44 (20) 7946-0958",
            "tags": ["vip", " vip", "b2b"], "source": "linkedin",
            "source_detail": {"campaign": "spring"},
            "social_profiles": [{"platform": "linkedin", "platform_user_id": 12345, "handle": "ada"}],
            "id": "ignored", "heat_score": 99
        }))
        .unwrap();
        assert_eq!(input.first_name.as_deref(), Some("Ada"));
        assert_eq!(input.email.as_deref(), Some("Ada@Example.COM"));
        assert_eq!(input.email_normalized().as_deref(), Some("ada@example.com"));
        assert_eq!(input.phone_normalized().as_deref(), Some("+442079460958"));
        assert_eq!(input.tags, vec!["vip", "b2b"]);
        assert_eq!(input.source, Source::Linkedin);
        assert_eq!(input.social_profiles[0].platform_user_id, "12345");
        let minimal = parse_create(&json!({"company": "Acme"})).unwrap();
        assert_eq!(minimal.source, Source::Other);
    }

    #[test]
    fn create_names_every_bad_field() {
        let errors = parse_create(&json!({
            "email": "not-an-email", "source": "tv", "tags": ["ok", 3, ""], "phone": "12",
            "social_profiles": [{"platform": "myspace", "platform_user_id": ""}],
            "colour": "red", "source_detail": "x"
        }))
        .unwrap_err();
        let names = fields(&errors);
        for expected in [
            "email",
            "source",
            "tags[1]",
            "tags[2]",
            "phone",
            "social_profiles[0].platform",
            "social_profiles[0].platform_user_id",
            "colour",
            "source_detail",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        assert_eq!(fields(&parse_create(&json!({})).unwrap_err()), vec!["body"]);
        assert_eq!(
            fields(&parse_create(&json!([1])).unwrap_err()),
            vec!["body"]
        );
    }

    #[test]
    fn patch_distinguishes_absent_null_and_set() {
        let patch =
            parse_patch(&json!({"first_name": null, "company": "Acme", "tags": []})).unwrap();
        assert_eq!(patch.first_name, Change::Clear);
        assert_eq!(patch.last_name, Change::Keep);
        assert_eq!(patch.company, Change::Set("Acme".to_string()));
        assert_eq!(patch.tags, Some(vec![]));
        assert!(parse_patch(&json!({})).unwrap().is_empty());
        assert_eq!(
            fields(&parse_patch(&json!({"source": null})).unwrap_err()),
            vec!["source"]
        );
        assert_eq!(Change::Set(2).apply(Some(1)), Some(2));
        assert_eq!(Change::<i32>::Clear.apply(Some(1)), None);
        assert_eq!(Change::<i32>::Keep.apply(Some(1)), Some(1));
    }

    #[test]
    fn phones_normalize_to_e164ish_digits() {
        assert_eq!(
            normalize_phone("+1 (555) 010-0199").unwrap(),
            "+15550100199"
        );
        assert_eq!(
            normalize_phone("0044 20 7946 0958").unwrap(),
            "+442079460958"
        );
        assert_eq!(normalize_phone("555.010.0199").unwrap(), "5550100199");
        assert!(normalize_phone("12345").is_err());
        assert!(normalize_phone("+1234567890123456").is_err());
        assert!(normalize_phone("call me").is_err());
        assert!(normalize_phone("++15550100").is_err());
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(normalize_email(" A.B@X.io ").unwrap(), "a.b@x.io");
        for bad in [
            "", "a", "a@b", "a@@b.c", "a b@c.d", "@b.co", "a@.b.co", "a@b..co",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_and_tags() {
        assert!(is_http_url("https://linkedin.com/in/ada"));
        assert!(!is_http_url("ftp://x.y"));
        assert!(!is_http_url("https://"));
        assert_eq!(
            union_tags(&["a".into(), "b".into()], &["b".into(), "c".into()]),
            vec!["a", "b", "c"]
        );
    }
}
