//! Pipeline rules that need no storage: stage names, a reorder request's validity, and where a
//! moved item lands between its neighbours.

use std::collections::HashSet;

use crate::ranking;
use crate::types::FieldError;

pub const MAX_STAGE_NAME_LEN: usize = 80;
pub const MAX_STAGES: usize = 50;
pub const DEFAULT_BOARD_LIMIT: usize = 50;
pub const MAX_BOARD_LIMIT: usize = 200;

/// A stage name: trimmed, 1 to 80 characters, no control characters.
pub fn validate_stage_name(field: &str, name: &str) -> Result<String, FieldError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if name.chars().count() > MAX_STAGE_NAME_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_STAGE_NAME_LEN} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_string())
}

/// A reorder must list every existing stage exactly once.
pub fn validate_reorder(existing: &[String], requested: &[String]) -> Result<(), FieldError> {
    let mut seen = HashSet::new();
    for id in requested {
        if !seen.insert(id.as_str()) {
            return Err(FieldError::new("stage_ids", format!("lists {id} twice")));
        }
    }
    let existing_set: HashSet<&str> = existing.iter().map(String::as_str).collect();
    if let Some(unknown) = requested
        .iter()
        .find(|id| !existing_set.contains(id.as_str()))
    {
        return Err(FieldError::new(
            "stage_ids",
            format!("{unknown} is not a stage of this org"),
        ));
    }
    if let Some(missing) = existing.iter().find(|id| !seen.contains(id.as_str())) {
        return Err(FieldError::new(
            "stage_ids",
            format!("must list every stage; {missing} is missing"),
        ));
    }
    Ok(())
}

/// The rank key for an item placed between `before` (the item it follows) and `after` (the item it
/// precedes). Keys that are not in order (a stale client view) are an error naming the field.
pub fn key_between(before: Option<&str>, after: Option<&str>) -> Result<String, FieldError> {
    ranking::between(before, after).map_err(|error| match error {
        ranking::RankError::OutOfOrder(..) => FieldError::new(
            "before_lead_id",
            "the given neighbours are not adjacent in this order: after_lead_id must come right before before_lead_id",
        ),
        ranking::RankError::InvalidKey(_) => FieldError::new("stage_id", "the column's positions are corrupt"),
    })
}

/// Parses a board/column page size: default 50, 1 to 200.
pub fn parse_limit(raw: Option<&str>) -> Result<usize, FieldError> {
    match raw {
        None => Ok(DEFAULT_BOARD_LIMIT),
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_BOARD_LIMIT).contains(&n) => Ok(n),
            _ => Err(FieldError::new(
                "limit",
                format!("must be a whole number from 1 to {MAX_BOARD_LIMIT}"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            validate_stage_name("name", "  Demo "),
            Ok("Demo".to_string())
        );
        assert!(validate_stage_name("name", "   ").is_err());
        assert!(validate_stage_name("name", &"x".repeat(81)).is_err());
        assert!(validate_stage_name("name", "a\nb").is_err());
    }

    #[test]
    fn reorder_is_a_permutation() {
        let existing = ids(&["a", "b", "c"]);
        assert!(validate_reorder(&existing, &ids(&["c", "a", "b"])).is_ok());
        assert!(validate_reorder(&existing, &ids(&["a", "b"])).is_err());
        assert!(validate_reorder(&existing, &ids(&["a", "b", "c", "d"])).is_err());
        assert!(validate_reorder(&existing, &ids(&["a", "a", "b", "c"])).is_err());
    }

    #[test]
    fn keys_between_neighbours() {
        let k = key_between(Some("a"), Some("c")).unwrap();
        assert_eq!(k, "b");
        assert_eq!(
            key_between(Some("c"), Some("a")).unwrap_err().field,
            "before_lead_id"
        );
        assert!(key_between(None, None).is_ok());
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None), Ok(50));
        assert_eq!(parse_limit(Some("3")), Ok(3));
        assert!(parse_limit(Some("0")).is_err());
        assert!(parse_limit(Some("201")).is_err());
        assert!(parse_limit(Some("x")).is_err());
    }
}
