//! `POST /v1/leads/bulk`: one action over up to [`MAX_BULK_IDS`] leads of the list.
//!
//! ```json
//! {"ids": ["lead_1", "lead_2"], "action": "assign_owner", "owner_id": "user-ana"}
//! {"ids": ["lead_1"], "action": "add_tag", "tag": "vip"}
//! {"ids": ["lead_1"], "action": "move_stage", "stage_id": "stg_..."}
//! ```
//!
//! Each action is a field of the lead patch (`owner_id`, `tags`, `stage_id`) and is validated
//! like it; `owner_id: null` unassigns. The field an action does not read is an error, so a
//! mistaken body never half-applies.

use serde_json::{json, Map, Value};

use crate::body::{self, Fields};
use crate::leads::{normalize_tags, parse_patch, Change};
use crate::types::FieldError;

/// Most leads one bulk request names (a page of the UI's list is 50).
pub const MAX_BULK_IDS: usize = 100;

const FIELDS: Fields<'static> = Fields::exactly(&["ids", "action", "owner_id", "tag", "stage_id"]);

/// The actions, by their wire name, with the field each one reads.
pub const ACTIONS: &[(&str, &str)] = &[
    ("assign_owner", "owner_id"),
    ("add_tag", "tag"),
    ("move_stage", "stage_id"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkAction {
    /// `None` unassigns.
    AssignOwner(Option<String>),
    AddTag(String),
    MoveStage(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkRequest {
    /// Distinct, in the request's order.
    pub ids: Vec<String>,
    pub action: BulkAction,
}

/// What became of one lead of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemStatus {
    /// Done, or already so (the lead had the tag, sat in the stage, had the owner).
    Ok,
    /// No such lead in the caller's org (another org's id reads the same).
    NotFound,
    /// Refused for this lead; the item says why.
    Error,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Ok => "ok",
            ItemStatus::NotFound => "not_found",
            ItemStatus::Error => "error",
        }
    }
}

/// Reads a bulk body; every problem at once, each naming its field.
pub fn parse_bulk(body: &Value) -> Result<BulkRequest, Vec<FieldError>> {
    let (object, mut errors) = body::parse(body, FIELDS)?;
    let ids = parse_ids(object, &mut errors);
    let action = parse_action(object, &mut errors);
    match (ids, action) {
        (Some(ids), Some(action)) if errors.is_empty() => Ok(BulkRequest { ids, action }),
        _ => Err(errors),
    }
}

fn parse_ids(object: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<Vec<String>> {
    let Some(Value::Array(values)) = object.get("ids") else {
        errors.push(FieldError::new("ids", "is required: an array of lead ids"));
        return None;
    };
    if values.is_empty() {
        errors.push(FieldError::new("ids", "must name at least one lead"));
        return None;
    }
    if values.len() > MAX_BULK_IDS {
        errors.push(FieldError::new(
            "ids",
            format!("at most {MAX_BULK_IDS} leads per request"),
        ));
        return None;
    }
    let mut ids: Vec<String> = Vec::with_capacity(values.len());
    let before = errors.len();
    for (index, value) in values.iter().enumerate() {
        match value.as_str().map(str::trim) {
            Some(id) if !id.is_empty() && id.len() <= 100 => {
                if !ids.iter().any(|known| known == id) {
                    ids.push(id.to_string());
                }
            }
            _ => errors.push(FieldError::new(
                format!("ids[{index}]"),
                "must be a lead id (a non-empty string)",
            )),
        }
    }
    (errors.len() == before).then_some(ids)
}

fn parse_action(object: &Map<String, Value>, errors: &mut Vec<FieldError>) -> Option<BulkAction> {
    let names: Vec<&str> = ACTIONS.iter().map(|(name, _)| *name).collect();
    let Some((name, field)) = object
        .get("action")
        .and_then(Value::as_str)
        .and_then(|action| ACTIONS.iter().find(|(name, _)| *name == action))
    else {
        errors.push(FieldError::new(
            "action",
            format!("must be one of: {}", names.join(", ")),
        ));
        return None;
    };
    for (other_action, other) in ACTIONS {
        if other != field && object.contains_key(*other) {
            errors.push(FieldError::new(
                *other,
                format!("is not read by {name}; {other_action} reads it"),
            ));
        }
    }
    let Some(value) = object.get(*field) else {
        errors.push(FieldError::new(*field, format!("is required by {name}")));
        return None;
    };
    match *name {
        "assign_owner" => match parse_patch(&json!({ "owner_id": value })) {
            Ok(patch) => Some(BulkAction::AssignOwner(match patch.owner_id {
                Change::Set(owner) => Some(owner),
                _ => None,
            })),
            Err(mut found) => {
                errors.append(&mut found);
                None
            }
        },
        "add_tag" => match normalize_tags(std::slice::from_ref(value), "tag") {
            Ok(mut tags) if tags.len() == 1 => tags.pop().map(BulkAction::AddTag),
            Ok(_) => None,
            Err(found) => {
                // One tag: its errors are the field's, not an array element's.
                errors.extend(
                    found
                        .into_iter()
                        .map(|error| FieldError::new("tag", error.message)),
                );
                None
            }
        },
        _ => match value.as_str().map(str::trim) {
            Some(stage) if !stage.is_empty() => Some(BulkAction::MoveStage(stage.to_string())),
            _ => {
                errors.push(FieldError::new("stage_id", "must be a stage id"));
                None
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn each_action_reads_its_field() {
        let owner = parse_bulk(
            &json!({"ids": ["a", "b", "a"], "action": "assign_owner", "owner_id": " user-ana "}),
        )
        .unwrap();
        assert_eq!(owner.ids, ["a", "b"]);
        assert_eq!(
            owner.action,
            BulkAction::AssignOwner(Some("user-ana".into()))
        );
        let unassign =
            parse_bulk(&json!({"ids": ["a"], "action": "assign_owner", "owner_id": null})).unwrap();
        assert_eq!(unassign.action, BulkAction::AssignOwner(None));
        let tag = parse_bulk(&json!({"ids": ["a"], "action": "add_tag", "tag": " vip "})).unwrap();
        assert_eq!(tag.action, BulkAction::AddTag("vip".into()));
        let stage = parse_bulk(&json!({"ids": ["a"], "action": "move_stage", "stage_id": "stg_1"}))
            .unwrap();
        assert_eq!(stage.action, BulkAction::MoveStage("stg_1".into()));
    }

    #[test]
    fn ids_are_required_bounded_and_strings() {
        let too_many: Vec<String> = (0..=MAX_BULK_IDS).map(|i| format!("lead_{i}")).collect();
        let errors =
            parse_bulk(&json!({"ids": too_many, "action": "add_tag", "tag": "x"})).unwrap_err();
        assert_eq!(fields(&errors), ["ids"]);
        assert!(errors[0].message.contains("100"), "{}", errors[0].message);
        let exactly: Vec<String> = (0..MAX_BULK_IDS).map(|i| format!("lead_{i}")).collect();
        assert!(parse_bulk(&json!({"ids": exactly, "action": "add_tag", "tag": "x"})).is_ok());
        for ids in [json!([]), json!("lead_1"), json!(null)] {
            let errors =
                parse_bulk(&json!({"ids": ids, "action": "add_tag", "tag": "x"})).unwrap_err();
            assert_eq!(fields(&errors), ["ids"], "{ids}");
        }
        let errors =
            parse_bulk(&json!({"ids": ["a", 3, ""], "action": "add_tag", "tag": "x"})).unwrap_err();
        assert_eq!(fields(&errors), ["ids[1]", "ids[2]"]);
    }

    #[test]
    fn bad_actions_and_values_name_their_field() {
        let errors = parse_bulk(&json!({"ids": ["a"], "action": "delete"})).unwrap_err();
        assert_eq!(fields(&errors), ["action"]);
        assert!(errors[0]
            .message
            .contains("assign_owner, add_tag, move_stage"));
        let errors = parse_bulk(&json!({"ids": ["a"], "action": "add_tag"})).unwrap_err();
        assert_eq!(fields(&errors), ["tag"]);
        let errors = parse_bulk(&json!({"ids": ["a"], "action": "add_tag", "tag": "x".repeat(51)}))
            .unwrap_err();
        assert_eq!(fields(&errors), ["tag"]);
        let errors = parse_bulk(
            &json!({"ids": ["a"], "action": "add_tag", "tag": "x", "stage_id": "stg_1"}),
        )
        .unwrap_err();
        assert_eq!(fields(&errors), ["stage_id"]);
        let errors = parse_bulk(&json!({"ids": ["a"], "action": "assign_owner", "owner_id": 7}))
            .unwrap_err();
        assert_eq!(fields(&errors), ["owner_id"]);
        let errors =
            parse_bulk(&json!({"ids": ["a"], "action": "move_stage", "stage_id": ""})).unwrap_err();
        assert_eq!(fields(&errors), ["stage_id"]);
        let errors =
            parse_bulk(&json!({"ids": ["a"], "action": "add_tag", "tag": "x", "colour": 1}))
                .unwrap_err();
        assert_eq!(fields(&errors), ["colour"]);
        assert_eq!(fields(&parse_bulk(&json!([1])).unwrap_err()), ["body"]);
    }
}
