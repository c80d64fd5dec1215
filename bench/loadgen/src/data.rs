//! Realistic payloads and names.

use serde_json::{json, Value};

use crate::util::Rng;

/// The page the ingest benchmark's org connects (and every delivery names).
pub const PAGE_ID: &str = "104857600000000";

pub const FIRST_NAMES: [&str; 40] = [
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Elijah", "Sophia", "Lucas", "Mia", "Mateo", "Amelia",
    "Levi", "Harper", "Ezra", "Evelyn", "Luca", "Aria", "Leo", "Chloe", "Jack", "Zoë", "Hugo",
    "Léa", "Jonas", "Ingrid", "Mehmet", "Aisha", "Kenji", "Priya", "Diego", "Fatima", "Ivan",
    "Nora", "Omar", "Sara", "Tomás", "Yuki", "Ada", "Grace", "Alan",
];

pub const LAST_NAMES: [&str; 40] = [
    "Anderson",
    "Brown",
    "Carter",
    "Davis",
    "Evans",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ivanova",
    "Jensen",
    "Kowalski",
    "Lovelace",
    "Martin",
    "Nguyen",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Turner",
    "Umarov",
    "Vargas",
    "Walker",
    "Xu",
    "Yamamoto",
    "Zimmermann",
    "Müller",
    "Dubois",
    "Hopper",
    "Turing",
    "Silva",
    "Kim",
    "Patel",
    "Cohen",
    "Larsen",
    "Moreau",
    "Novak",
    "O'Brien",
    "Santos",
    "Weber",
];

pub const COMPANIES: [&str; 30] = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Stark Industries",
    "Wayne Logistics",
    "Hooli",
    "Vandelay Imports",
    "Soylent Foods",
    "Tyrell Systems",
    "Cyberdyne",
    "Aperture Labs",
    "Wonka Confectionery",
    "Gringotts Finance",
    "Oceanic Air",
    "Monarch Solutions",
    "Nakatomi Trading",
    "Pied Piper",
    "Massive Dynamic",
    "Dunder Mifflin",
    "Prestige Worldwide",
    "Sterling Cooper",
    "Bluth Company",
    "Los Pollos",
    "Duff Beverages",
    "Octan Energy",
    "Virtucon",
    "Gekko & Co",
    "Wernham Hogg",
    "Krusty Krab",
];

pub const TAGS: [&str; 10] = [
    "vip",
    "newsletter",
    "webinar",
    "trade-show",
    "partner",
    "enterprise",
    "smb",
    "churn-risk",
    "trial",
    "referral-program",
];

/// One signed Facebook Page delivery of `entries` feed changes (reactions, comments, shares), as
/// Meta sends them: one entry per change, all for `page`. `seq` and `nonce` make every
/// delivery's event ids unique (so each one is a new inbox row); people come from a pool of 2,000
/// fans, so a share of them are already leads when their event is processed.
pub fn meta_delivery(page: &str, seq: u64, entries: usize, nonce: u64, rng: &mut Rng) -> Vec<u8> {
    let now = crate::util::now().timestamp();
    let entry: Vec<Value> = (0..entries as u64)
        .map(|j| {
            let fan = rng.below(2000);
            let user = format!("{}", 6_100_000_000_000_000u64 + fan);
            let name = format!(
                "{} {}",
                FIRST_NAMES[(fan % 40) as usize],
                LAST_NAMES[((fan / 40) % 40) as usize]
            );
            let post = format!("{page}_{}", 9_000_000 + rng.below(40));
            let unique = format!("{nonce}{seq:07}{j:03}");
            let value = match rng.below(10) {
                0..=5 => json!({"item": "reaction", "verb": "add", "reaction_type": "like",
                    "post_id": post, "comment_id": format!("{post}_{unique}"),
                    "from": {"id": user, "name": name}, "created_time": now}),
                6..=8 => json!({"item": "comment", "verb": "add", "post_id": post,
                    "comment_id": format!("{post}_{unique}"),
                    "message": "Looks great! How much is the premium plan for a team of ten?",
                    "from": {"id": user, "name": name}, "created_time": now}),
                _ => json!({"item": "share", "verb": "add", "post_id": post,
                    "share_id": unique, "link": "https://example.com/offers/winter",
                    "from": {"id": user, "name": name}, "created_time": now}),
            };
            json!({"id": page, "time": now, "changes": [{"field": "feed", "value": value}]})
        })
        .collect();
    serde_json::to_vec(&json!({"object": "page", "entry": entry})).expect("JSON")
}
