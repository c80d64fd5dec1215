//! The demo workspace a development user can load with one click: leads from every source, with
//! touchpoints across the social platforms and the website spread over the last four weeks, a place
//! in the pipeline, and a few leads hot enough to show on the dashboard.
//!
//! The plan is data, made from `now` alone; the API writes it through the same operations as real
//! leads and touchpoints, so the scores, levels and dashboards it shows are the product's own.
//! Addresses are on `example.com` and `example.org`, reserved for examples, so no demo email can
//! reach a real person.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use crate::leads::{LeadInput, SocialProfileInput};
use crate::types::{InteractionType, Platform, Source};

/// The tag every demo lead carries, so a user can tell them apart (the leads list filters by tag).
pub const DEMO_TAG: &str = "demo";

/// One lead of the demo and what happened with it.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoLead {
    pub input: LeadInput,
    /// Where the lead sits in the pipeline: an index into the org's stages in board order (the
    /// last stage when the org has fewer).
    pub stage_index: usize,
    /// Whether the signed-in user owns it (the others are unassigned).
    pub owned: bool,
    pub touches: Vec<DemoTouch>,
}

/// One touchpoint of a demo lead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DemoTouch {
    pub kind: InteractionType,
    pub platform: Platform,
    pub occurred_at: DateTime<Utc>,
}

/// How engaged a demo lead is; each profile is a fixed pattern of touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engagement {
    /// Asked for a price and visited in person within the last days.
    Buying,
    /// Requested information and browsed the site this week.
    Interested,
    /// Social activity only, some of it weeks ago.
    Browsing,
    /// One old touch.
    Quiet,
}

/// (first name, last name, company, title, source, engagement): fictional people.
const PEOPLE: [(&str, &str, &str, &str, Source, Engagement); 24] = [
    (
        "Amara",
        "Okafor",
        "Northwind Traders",
        "VP Sales",
        Source::Website,
        Engagement::Buying,
    ),
    (
        "Lukas",
        "Brandt",
        "Alpine Outfitters",
        "Head of Marketing",
        Source::Facebook,
        Engagement::Buying,
    ),
    (
        "Sofia",
        "Marquez",
        "Brightline Studio",
        "Founder",
        Source::Instagram,
        Engagement::Buying,
    ),
    (
        "Kenji",
        "Watanabe",
        "Harbor Logistics",
        "COO",
        Source::Linkedin,
        Engagement::Buying,
    ),
    (
        "Priya",
        "Raman",
        "Lumen Health",
        "Operations Lead",
        Source::Website,
        Engagement::Interested,
    ),
    (
        "Tomás",
        "Silva",
        "Verde Foods",
        "Purchasing Manager",
        Source::Facebook,
        Engagement::Interested,
    ),
    (
        "Chloe",
        "Dubois",
        "Atelier Nord",
        "Creative Director",
        Source::Instagram,
        Engagement::Interested,
    ),
    (
        "Ethan",
        "Clarke",
        "Summit Analytics",
        "CTO",
        Source::Linkedin,
        Engagement::Interested,
    ),
    (
        "Hannah",
        "Schmidt",
        "Kiefer & Sons",
        "Office Manager",
        Source::Referral,
        Engagement::Interested,
    ),
    (
        "Omar",
        "Haddad",
        "Cedar Property",
        "Managing Partner",
        Source::Direct,
        Engagement::Interested,
    ),
    (
        "Grace",
        "Lin",
        "Pixel Harbor",
        "Product Manager",
        Source::Website,
        Engagement::Browsing,
    ),
    (
        "Mateo",
        "Rossi",
        "Trattoria Group",
        "Owner",
        Source::Facebook,
        Engagement::Browsing,
    ),
    (
        "Aisha",
        "Bello",
        "Glow Cosmetics",
        "Brand Manager",
        Source::Instagram,
        Engagement::Browsing,
    ),
    (
        "Jonas",
        "Lindqvist",
        "Fjord Energy",
        "Procurement",
        Source::Linkedin,
        Engagement::Browsing,
    ),
    (
        "Maya",
        "Cohen",
        "Sparrow Books",
        "Marketing Lead",
        Source::Facebook,
        Engagement::Browsing,
    ),
    (
        "Lucas",
        "Moreau",
        "Velo Cycles",
        "Store Manager",
        Source::Instagram,
        Engagement::Browsing,
    ),
    (
        "Nina",
        "Petrova",
        "Orbit Software",
        "Head of Growth",
        Source::Linkedin,
        Engagement::Browsing,
    ),
    (
        "Samuel",
        "Adeyemi",
        "Baobab Ventures",
        "Analyst",
        Source::Website,
        Engagement::Browsing,
    ),
    (
        "Elena",
        "García",
        "Casa Bonita",
        "Events Coordinator",
        Source::Facebook,
        Engagement::Quiet,
    ),
    (
        "Ravi",
        "Patel",
        "Monsoon Textiles",
        "Director",
        Source::Instagram,
        Engagement::Quiet,
    ),
    (
        "Julia",
        "Novak",
        "Crescent Dental",
        "Practice Manager",
        Source::Linkedin,
        Engagement::Quiet,
    ),
    (
        "Daniel",
        "Kim",
        "Tidewater Boats",
        "Sales Manager",
        Source::Website,
        Engagement::Quiet,
    ),
    (
        "Ingrid",
        "Berg",
        "Nordlys Design",
        "Partner",
        Source::Referral,
        Engagement::Quiet,
    ),
    (
        "Felix",
        "Wagner",
        "Urban Roots",
        "Founder",
        Source::Other,
        Engagement::Quiet,
    ),
];

/// The demo workspace as of `now`: every touch is in the past four weeks and none is later than
/// `now`.
pub fn plan(now: DateTime<Utc>) -> Vec<DemoLead> {
    PEOPLE
        .iter()
        .enumerate()
        .map(
            |(index, &(first, last, company, title, source, engagement))| {
                let platform = home_platform(source);
                DemoLead {
                    input: lead_input(index, first, last, company, title, source),
                    stage_index: stage_index(engagement, index),
                    owned: index % 3 != 2,
                    touches: touches(engagement, platform, index, now),
                }
            },
        )
        .collect()
}

fn lead_input(
    index: usize,
    first: &str,
    last: &str,
    company: &str,
    title: &str,
    source: Source,
) -> LeadInput {
    let mut input = LeadInput::new(source);
    input.first_name = Some(first.to_string());
    input.last_name = Some(last.to_string());
    let domain = if index.is_multiple_of(2) {
        "example.com"
    } else {
        "example.org"
    };
    input.email = Some(format!(
        "{}.{}@{domain}",
        ascii_lower(first),
        ascii_lower(last)
    ));
    input.phone = Some(format!("+1 555 01{:02}", index));
    input.company = Some(company.to_string());
    input.title = Some(title.to_string());
    input.tags = vec![DEMO_TAG.to_string()];
    input.source_detail = source_detail(source);
    if let Some(platform) = social_platform(source) {
        input.social_profiles = vec![SocialProfileInput {
            platform,
            platform_user_id: format!("demo-{}-{index}", platform.as_str()),
            handle: Some(format!("{}{}", ascii_lower(first), ascii_lower(last))),
            url: None,
        }];
    }
    input
}

fn source_detail(source: Source) -> Map<String, Value> {
    let detail = match source {
        Source::Website => json!({"campaign": "spring-webinar"}),
        Source::Facebook | Source::Instagram => json!({"campaign": "lead-ads-q2"}),
        Source::Linkedin => json!({"campaign": "decision-makers"}),
        Source::Referral => json!({"referred_by": "existing customer"}),
        _ => json!({}),
    };
    detail.as_object().cloned().unwrap_or_default()
}

/// Letters of a name as an address's local part (accents dropped).
fn ascii_lower(name: &str) -> String {
    name.chars()
        .filter_map(|c| match c {
            'á' | 'à' | 'ä' => Some('a'),
            'é' | 'è' => Some('e'),
            'í' => Some('i'),
            'ó' | 'ö' => Some('o'),
            'ú' | 'ü' => Some('u'),
            c if c.is_ascii_alphabetic() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn social_platform(source: Source) -> Option<Platform> {
    match source {
        Source::Facebook => Some(Platform::Facebook),
        Source::Instagram => Some(Platform::Instagram),
        Source::Linkedin => Some(Platform::Linkedin),
        _ => None,
    }
}

/// Where a lead's social touches happen: its own network, or Facebook for leads from elsewhere.
fn home_platform(source: Source) -> Platform {
    social_platform(source).unwrap_or(Platform::Facebook)
}

/// Buying leads sit further along the pipeline than quiet ones.
fn stage_index(engagement: Engagement, index: usize) -> usize {
    match engagement {
        Engagement::Buying => 2 + index % 3,
        Engagement::Interested => 1 + index % 2,
        Engagement::Browsing => index % 2,
        Engagement::Quiet => 0,
    }
}

fn touches(
    engagement: Engagement,
    social: Platform,
    index: usize,
    now: DateTime<Utc>,
) -> Vec<DemoTouch> {
    use InteractionType as T;
    use Platform as P;
    // Hours before `now`; the lead's index shifts them so the days of the chart differ.
    let shift = (index as i64 * 7) % 23;
    let pattern: Vec<(InteractionType, Platform, i64)> = match engagement {
        Engagement::Buying => vec![
            (T::SocialFollow, social, 24 * 20 + shift),
            (T::SocialLike, social, 24 * 12 + shift),
            (T::WebsiteVisit, P::Website, 24 * 6 + shift),
            (T::InfoRequest, P::Website, 24 * 4 + shift),
            (T::Meeting, P::InPerson, 24 * 2 + shift),
            (T::PriceQuote, P::Website, 30 + shift),
            (T::SiteVisit, P::InPerson, 5 + shift % 5),
        ],
        Engagement::Interested => vec![
            (T::SocialLike, social, 24 * 15 + shift),
            (T::SocialComment, social, 24 * 9 + shift),
            (T::WebsiteVisit, P::Website, 24 * 5 + shift),
            (T::InfoRequest, P::Website, 24 * 3 + shift),
            (T::Email, P::Email, 24 + shift),
        ],
        Engagement::Browsing => vec![
            (T::SocialFollow, social, 24 * 26 + shift),
            (T::SocialLike, social, 24 * 14 + shift),
            (T::StoryView, social, 24 * 8 + shift),
            (T::SocialLike, social, 24 * 2 + shift),
        ],
        Engagement::Quiet => vec![(T::SocialLike, social, 24 * 24 + shift)],
    };
    pattern
        .into_iter()
        .map(|(kind, platform, hours_ago)| DemoTouch {
            kind,
            platform,
            occurred_at: now - Duration::hours(hours_ago),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::TimeZone;

    use super::*;
    use crate::scoring::{score, ScoringConfig, Touch};
    use crate::types::HeatLevel;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 15, 0, 0).unwrap()
    }

    fn level_counts(config: &ScoringConfig) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for lead in plan(now()) {
            let touches: Vec<Touch> = lead
                .touches
                .iter()
                .map(|t| Touch::new(t.kind, t.occurred_at))
                .collect();
            match score(&touches, config, now()).level {
                HeatLevel::Cold => counts.0 += 1,
                HeatLevel::Warm => counts.1 += 1,
                HeatLevel::Hot => counts.2 += 1,
            }
        }
        counts
    }

    #[test]
    fn the_default_scoring_shows_every_level_with_a_few_hot_leads() {
        let (cold, warm, hot) = level_counts(&ScoringConfig::default());
        assert!((3..=6).contains(&hot), "hot leads: {hot}");
        assert!(warm >= 3, "warm leads: {warm}");
        assert!(cold >= 3, "cold leads: {cold}");
    }

    #[test]
    fn hot_leads_stay_hot_with_a_monthly_decay() {
        let config = ScoringConfig {
            decay_half_life_days: Some(30.0),
            ..ScoringConfig::default()
        };
        let (_, _, hot) = level_counts(&config);
        assert!(hot >= 3, "hot leads with decay: {hot}");
    }

    #[test]
    fn every_source_and_social_platform_appears() {
        let leads = plan(now());
        let sources: BTreeSet<&str> = leads.iter().map(|l| l.input.source.as_str()).collect();
        for source in [
            "website",
            "facebook",
            "instagram",
            "linkedin",
            "referral",
            "direct",
        ] {
            assert!(sources.contains(source), "missing source {source}");
        }
        let platforms: BTreeSet<&str> = leads
            .iter()
            .flat_map(|l| l.touches.iter().map(|t| t.platform.as_str()))
            .collect();
        for platform in ["facebook", "instagram", "linkedin", "website"] {
            assert!(platforms.contains(platform), "missing platform {platform}");
        }
    }

    #[test]
    fn touches_are_in_the_last_four_weeks_and_never_in_the_future() {
        for lead in plan(now()) {
            for touch in &lead.touches {
                assert!(touch.occurred_at < now(), "{touch:?}");
                assert!(touch.occurred_at > now() - Duration::days(28), "{touch:?}");
            }
        }
    }

    #[test]
    fn leads_are_distinct_reachable_only_at_reserved_domains_and_tagged() {
        let leads = plan(now());
        let emails: BTreeSet<String> = leads
            .iter()
            .filter_map(|l| l.input.email_normalized())
            .collect();
        assert_eq!(
            emails.len(),
            leads.len(),
            "every lead has its own valid email"
        );
        let phones: BTreeSet<String> = leads
            .iter()
            .filter_map(|l| l.input.phone_normalized())
            .collect();
        assert_eq!(
            phones.len(),
            leads.len(),
            "every lead has its own valid phone"
        );
        for email in &emails {
            assert!(
                email.ends_with("@example.com") || email.ends_with("@example.org"),
                "{email}"
            );
        }
        assert!(leads
            .iter()
            .all(|l| l.input.tags == vec![DEMO_TAG.to_string()]));
    }

    #[test]
    fn the_pipeline_spreads_leads_over_several_stages() {
        let stages: BTreeSet<usize> = plan(now()).iter().map(|l| l.stage_index).collect();
        assert!(stages.len() >= 3, "{stages:?}");
    }
}
