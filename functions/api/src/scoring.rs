//! `GET /v1/scoring` and `PUT /v1/scoring` (admins): the org's weights, thresholds and decay.
//!
//! A change bumps the config version and flags every lead of the org for the scoring job, in one
//! batch; the job rescores them with the new config.
//!
//! `POST /v1/scoring/preview` (admins) takes the same body as PUT and stores nothing: it answers
//! how the proposed config would score a sample of the org's leads (at most
//! `MAX_PREVIEW_LEADS`, read with their touches in two queries).

use std::collections::BTreeMap;

use leadheat_domain::body::{self, Fields};
use leadheat_domain::scoring::{ScoringConfig, Thresholds};
use leadheat_domain::scoring_preview::{self, Level, PREVIEW_PER_LIST};
use leadheat_domain::types::{FieldError, InteractionType};
use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::interactions::stored_touch;
use leadheat_edge::store::rescoring::{self, PreviewLeadRow};
use leadheat_edge::store::scoring_configs::{self, StoredConfig};
use serde_json::{json, Value};
use worker::Response;

use crate::context::Ctx;
use crate::request::ApiRequest;

pub async fn get(_req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    let stored = scoring_configs::get(&ctx.tenant).await?;
    http::json(200, &body(&stored, &ctx.now_rfc3339()))
}

pub async fn put(req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    ctx.require_admin()?;
    let value: Value = req.json()?;
    let config = parse_config(&value).map_err(Problem::validation)?;
    config.validate().map_err(Problem::validation)?;
    scoring_configs::put(&ctx.tenant, &config, &ctx.now_rfc3339()).await?;
    let stored = scoring_configs::get(&ctx.tenant).await?;
    http::json(200, &body(&stored, &ctx.now_rfc3339()))
}

/// `{"config", "computed_at", "leads": [{"id", "first_name", "last_name", "email", "company",
/// "last_interaction_at", "current": {"score", "level"}, "proposed": {"score", "level"},
/// "level_changed"}]}`: the org's hottest leads first, then its most recently active ones.
pub async fn preview(req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    ctx.require_admin()?;
    let value: Value = req.json()?;
    let config = parse_config(&value).map_err(Problem::validation)?;
    config.validate().map_err(Problem::validation)?;

    let (hottest, recent) = rescoring::preview_candidates(&ctx.tenant, PREVIEW_PER_LIST).await?;
    let ids = |rows: &[PreviewLeadRow]| rows.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    let sample = scoring_preview::sample_ids(&ids(&hottest), &ids(&recent));
    let rows: BTreeMap<&str, &PreviewLeadRow> = hottest
        .iter()
        .chain(&recent)
        .map(|row| (row.id.as_str(), row))
        .collect();
    let leads: Vec<(String, Level)> = sample
        .iter()
        .filter_map(|id| rows.get(id.as_str()))
        .map(|row| {
            let current = Level {
                score: row.heat_score,
                level: row.heat_level,
            };
            (row.id.clone(), current)
        })
        .collect();
    // An unreadable stored touch is left out, as the scoring job leaves it out.
    let touches = rescoring::touches_of(&ctx.tenant, &sample)
        .await?
        .into_iter()
        .filter_map(|row| stored_touch(&row.kind, &row.occurred_at).map(|t| (row.lead_id, t)));
    let previews = scoring_preview::preview(&leads, touches, &config, ctx.now);

    let items: Vec<Value> = previews
        .iter()
        .filter_map(|p| rows.get(p.lead_id.as_str()).map(|row| (p, row)))
        .map(|(p, row)| {
            json!({
                "id": row.id,
                "first_name": row.first_name,
                "last_name": row.last_name,
                "email": row.email,
                "company": row.company,
                "last_interaction_at": row.last_interaction_at,
                "current": p.current,
                "proposed": p.proposed,
                "level_changed": p.level_changed,
            })
        })
        .collect();
    http::json(
        200,
        &json!({"config": config, "computed_at": ctx.now_rfc3339(), "leads": items}),
    )
}

fn body(stored: &StoredConfig, now: &str) -> Value {
    let mut body = serde_json::to_value(&stored.config).unwrap_or_else(|_| json!({}));
    body["config_version"] = json!(stored.config_version);
    body["updated_at"] = json!(stored.updated_at.as_deref().unwrap_or(now));
    body
}

/// The PUT body as a config, naming each offending field. `config_version` and `updated_at` (what
/// GET returns) are accepted and ignored, so a client can send back what it read.
pub fn parse_config(value: &Value) -> Result<ScoringConfig, Vec<FieldError>> {
    let fields = Fields::exactly(&["weights", "thresholds", "decay_half_life_days"])
        .ignoring(&["config_version", "updated_at"]);
    let (object, mut errors) = body::parse(value, fields)?;
    let weights = match object.get("weights") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("weights", "is required"));
            None
        }
        Some(Value::Object(map)) => {
            let mut weights = BTreeMap::new();
            for (kind, points) in map {
                match kind.parse::<InteractionType>() {
                    Err(error) => errors.push(FieldError::new(
                        format!("weights.{kind}"),
                        error.to_string(),
                    )),
                    Ok(kind_value) => match points.as_i64() {
                        Some(points) => {
                            weights.insert(kind_value, points);
                        }
                        None => errors.push(FieldError::new(
                            format!("weights.{kind}"),
                            "must be a whole number of points",
                        )),
                    },
                }
            }
            Some(weights)
        }
        Some(_) => {
            errors.push(FieldError::new(
                "weights",
                "must be an object of type: points",
            ));
            None
        }
    };
    let thresholds = match object.get("thresholds") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new("thresholds", "is required"));
            None
        }
        Some(Value::Object(map)) => {
            let mut number = |name: &str| match map.get(name).and_then(Value::as_f64) {
                Some(n) => Some(n),
                None => {
                    errors.push(FieldError::new(
                        format!("thresholds.{name}"),
                        "must be a number",
                    ));
                    None
                }
            };
            let warm = number("warm");
            let hot = number("hot");
            for key in map.keys().filter(|k| !matches!(k.as_str(), "warm" | "hot")) {
                errors.push(FieldError::new(
                    format!("thresholds.{key}"),
                    "is not a threshold",
                ));
            }
            warm.zip(hot).map(|(warm, hot)| Thresholds { warm, hot })
        }
        Some(_) => {
            errors.push(FieldError::new(
                "thresholds",
                "must be an object {\"warm\", \"hot\"}",
            ));
            None
        }
    };
    let decay_half_life_days = match object.get("decay_half_life_days") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_f64() {
            Some(days) => Some(days),
            None => {
                errors.push(FieldError::new(
                    "decay_half_life_days",
                    "must be a number of days, or null to turn decay off",
                ));
                None
            }
        },
    };
    match (weights, thresholds) {
        (Some(weights), Some(thresholds)) if errors.is_empty() => Ok(ScoringConfig {
            weights,
            thresholds,
            decay_half_life_days,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(value: Value) -> Vec<String> {
        parse_config(&value)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn the_get_shape_parses_back() {
        let config = parse_config(&json!({
            "weights": {"social_like": 1, "price_quote": 8},
            "thresholds": {"warm": 6, "hot": 16},
            "decay_half_life_days": null,
            "config_version": 3,
            "updated_at": "2026-01-01T00:00:00.000Z"
        }))
        .unwrap();
        assert_eq!(config.weight(InteractionType::PriceQuote), 8);
        assert_eq!(
            config.thresholds,
            Thresholds {
                warm: 6.0,
                hot: 16.0
            }
        );
        assert_eq!(config.decay_half_life_days, None);
    }

    #[test]
    fn offending_fields_are_named() {
        assert_eq!(fields(json!({})), ["weights", "thresholds"]);
        assert_eq!(
            fields(
                json!({"weights": {"poke": 1, "social_like": 1.5}, "thresholds": {"warm": "x", "hot": 3}, "extra": 1})
            ),
            [
                "extra",
                "weights.poke",
                "weights.social_like",
                "thresholds.warm"
            ]
        );
        assert_eq!(
            fields(
                json!({"weights": {}, "thresholds": {"warm": 1, "hot": 3}, "decay_half_life_days": "x"})
            ),
            ["decay_half_life_days"]
        );
        assert_eq!(fields(json!([])), ["body"]);
    }

    #[test]
    fn validation_names_hot_when_warm_is_not_below_it() {
        let config =
            parse_config(&json!({"weights": {}, "thresholds": {"warm": 16, "hot": 16}})).unwrap();
        let errors = config.validate().unwrap_err();
        assert_eq!(errors[0].field, "thresholds.hot");
    }
}
