// The API's vocabularies (SPEC section 3), in display order.

export const HEAT_LEVELS = ["COLD", "WARM", "HOT"];

export const SOURCES = ["website", "facebook", "instagram", "linkedin", "referral", "direct", "other"];

export const PLATFORMS = ["facebook", "instagram", "linkedin", "website", "email", "phone", "in_person", "other"];

export const SOCIAL_PLATFORMS = ["facebook", "instagram", "linkedin"];

export const INTERACTION_TYPES = [
  "social_follow", "social_like", "website_visit", "info_request", "price_quote", "site_visit",
  "social_comment", "social_share", "social_mention", "direct_message", "story_view",
  "connection_request", "connection_accepted", "lead_form", "email", "call", "meeting", "note",
  "stage_change",
];

export const SOCIAL_TYPES = [
  "social_follow", "social_like", "social_comment", "social_share", "social_mention",
  "direct_message", "story_view", "connection_request", "connection_accepted",
];

// What a user may record by hand (stage changes come from the board).
export const MANUAL_TYPES = INTERACTION_TYPES.filter((t) => t !== "stage_change");

export const LEAD_SORTS = [
  ["-heat_score", "Hottest first"],
  ["heat_score", "Coldest first"],
  ["-last_interaction_at", "Latest touchpoint"],
  ["last_interaction_at", "Oldest touchpoint"],
  ["-created_at", "Newest leads"],
  ["created_at", "Oldest leads"],
  ["name", "Name A–Z"],
  ["-name", "Name Z–A"],
];

const WORDS = { in_person: "In person", linkedin: "LinkedIn", website: "Website", info_request: "Info request" };

/** `price_quote` → "Price quote". */
export function label(value) {
  if (value == null || value === "") return "—";
  if (WORDS[value]) return WORDS[value];
  const text = String(value).replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** A sentence fragment for a touchpoint: "liked a post", "sent a message", ... */
export function verb(type) {
  return {
    social_follow: "followed the page",
    social_like: "reacted to a post",
    social_comment: "commented",
    social_share: "shared a post",
    social_mention: "mentioned the company",
    direct_message: "sent a direct message",
    story_view: "viewed a story",
    connection_request: "sent a connection request",
    connection_accepted: "accepted a connection",
    website_visit: "visited the website",
    info_request: "requested information",
    price_quote: "requested a price quote",
    site_visit: "visited on site",
    lead_form: "filled in a lead form",
    email: "emailed",
    call: "had a call",
    meeting: "had a meeting",
    note: "note",
    stage_change: "moved in the pipeline",
  }[type] || label(type);
}
