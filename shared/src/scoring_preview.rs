//! The scoring preview: how a proposed [`ScoringConfig`] would score a small sample of an org's
//! leads, next to their stored heat, before an admin saves it.
//!
//! The sample is the org's hottest leads and its most recently active ones (they are what a
//! change of weights or thresholds is most likely to move), deduplicated and bounded by
//! [`MAX_PREVIEW_LEADS`]. Each proposed heat comes from [`crate::scoring::score`], the function the
//! scoring job uses, so a preview shows exactly what a save followed by a rescore stores (with
//! decay on, as of the moment of the preview).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::scoring::{score, Heat, ScoringConfig, Touch};
use crate::types::{serialize_compact_f64, HeatLevel};

/// Leads taken from each of the two lists (hottest, most recently active).
pub const PREVIEW_PER_LIST: usize = 5;
/// At most this many leads are previewed: their touches are read in one query.
pub const MAX_PREVIEW_LEADS: usize = 2 * PREVIEW_PER_LIST;

/// The sample's lead ids: the hottest first, then the recently active ones not already taken, at
/// most [`MAX_PREVIEW_LEADS`] in all.
pub fn sample_ids(hottest: &[String], recently_active: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::with_capacity(MAX_PREVIEW_LEADS);
    for id in hottest
        .iter()
        .take(PREVIEW_PER_LIST)
        .chain(recently_active.iter().take(PREVIEW_PER_LIST))
    {
        if ids.len() == MAX_PREVIEW_LEADS {
            break;
        }
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

/// A score and its level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Level {
    #[serde(serialize_with = "serialize_compact_f64")]
    pub score: f64,
    pub level: HeatLevel,
}

/// One previewed lead: its stored heat and the heat the proposed config gives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadPreview<K> {
    pub lead_id: K,
    pub current: Level,
    pub proposed: Level,
    /// Whether the proposed config puts the lead in another level.
    pub level_changed: bool,
}

/// Scores each sampled lead (key and stored heat) with `proposed` as of `now`, from its touches
/// (`(key, touch)` pairs in any order; a lead without any scores 0). Keeps the leads' order.
pub fn preview<K: Ord + Clone>(
    leads: &[(K, Level)],
    touches: impl IntoIterator<Item = (K, Touch)>,
    proposed: &ScoringConfig,
    now: DateTime<Utc>,
) -> Vec<LeadPreview<K>> {
    let mut by_lead: BTreeMap<K, Vec<Touch>> = BTreeMap::new();
    for (key, touch) in touches {
        by_lead.entry(key).or_default().push(touch);
    }
    leads
        .iter()
        .map(|(key, current)| {
            let own = by_lead.get(key).map(Vec::as_slice).unwrap_or(&[]);
            let Heat { score, level, .. } = score(own, proposed, now);
            LeadPreview {
                lead_id: key.clone(),
                current: *current,
                proposed: Level { score, level },
                level_changed: level != current.level,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::Thresholds;
    use crate::types::InteractionType::*;
    use chrono::{Duration, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_sample_takes_five_of_each_list_without_repeats() {
        let hottest = ids(&["a", "b", "c", "d", "e", "f"]);
        let recent = ids(&["c", "x", "a", "y", "z", "w"]);
        // "f" is beyond the hottest five; "c" and "a" are already taken; "w" is the sixth recent.
        assert_eq!(
            sample_ids(&hottest, &recent),
            ids(&["a", "b", "c", "d", "e", "x", "y", "z"])
        );
        assert_eq!(sample_ids(&[], &ids(&["q"])), ids(&["q"]));
        assert!(sample_ids(&[], &[]).is_empty());
    }

    #[test]
    fn the_sample_never_exceeds_the_bound() {
        let hottest: Vec<String> = (0..20).map(|i| format!("h{i}")).collect();
        let recent: Vec<String> = (0..20).map(|i| format!("r{i}")).collect();
        let sample = sample_ids(&hottest, &recent);
        assert_eq!(sample.len(), MAX_PREVIEW_LEADS);
        assert_eq!(sample[0], "h0");
        assert_eq!(sample[PREVIEW_PER_LIST], "r0");
    }

    #[test]
    fn proposed_heat_is_the_scoring_function_and_level_changes_are_flagged() {
        let warm = Level {
            score: 9.0,
            level: HeatLevel::Warm,
        };
        let leads = vec![("l1".to_string(), warm), ("l2".to_string(), warm)];
        let touches = vec![
            ("l1".to_string(), Touch::new(InfoRequest, now())),
            ("l1".to_string(), Touch::new(WebsiteVisit, now())),
            ("l1".to_string(), Touch::new(SocialLike, now())),
            ("l1".to_string(), Touch::new(SocialFollow, now())),
            ("l2".to_string(), Touch::new(PriceQuote, now())),
            ("l2".to_string(), Touch::new(SocialLike, now())),
        ];
        let mut proposed = ScoringConfig::default();
        proposed.weights.insert(InfoRequest, 20);
        let result = preview(&leads, touches.clone(), &proposed, now());

        let l1 = &result[0];
        assert_eq!(l1.lead_id, "l1");
        assert_eq!(l1.current, warm);
        assert_eq!(
            l1.proposed,
            Level {
                score: 24.0,
                level: HeatLevel::Hot
            }
        );
        assert!(l1.level_changed);
        // 8 + 1 under both configs: still WARM.
        assert_eq!(result[1].proposed.score, 9.0);
        assert!(!result[1].level_changed);

        // Identical to scoring the lead alone.
        let alone: Vec<Touch> = touches
            .iter()
            .filter(|(k, _)| k == "l1")
            .map(|(_, t)| *t)
            .collect();
        assert_eq!(score(&alone, &proposed, now()).score, l1.proposed.score);
    }

    #[test]
    fn thresholds_and_decay_of_the_proposal_apply() {
        let leads = vec![(
            "l".to_string(),
            Level {
                score: 10.0,
                level: HeatLevel::Warm,
            },
        )];
        let touches = vec![(
            "l".to_string(),
            Touch::new(SiteVisit, now() - Duration::days(14)),
        )];
        let proposed = ScoringConfig {
            thresholds: Thresholds {
                warm: 3.0,
                hot: 5.0,
            },
            decay_half_life_days: Some(7.0),
            ..ScoringConfig::default()
        };
        // 10 points, two half-lives old: 2.5, below the proposed warm threshold of 3.
        let result = preview(&leads, touches, &proposed, now());
        assert_eq!(
            result[0].proposed,
            Level {
                score: 2.5,
                level: HeatLevel::Cold
            }
        );
        assert!(result[0].level_changed);
    }

    #[test]
    fn a_lead_without_touches_scores_zero() {
        let leads = vec![(
            7u32,
            Level {
                score: 0.0,
                level: HeatLevel::Cold,
            },
        )];
        let result = preview(&leads, Vec::new(), &ScoringConfig::default(), now());
        assert_eq!(result[0].proposed.score, 0.0);
        assert!(!result[0].level_changed);
    }
}
