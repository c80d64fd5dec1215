// The org's members (GET /v1/members): the people owners are chosen from and shown as. A lead's
// owner_id is a member's user_id; an owner never seen through sign-in shows as the bare id.

import { api } from "./api.js";
import { getToken } from "./auth.js";

let cached = null;
let cachedFor = null;

/** The members, fetched once per session (an empty list when the request fails). */
export function loadMembers() {
  if (cachedFor !== getToken() || !cached) {
    cachedFor = getToken();
    cached = api("/v1/members").then(
      (answer) => answer.items || [],
      () => {
        cached = null;
        return [];
      },
    );
  }
  return cached;
}

/** How a member is named in pickers: "Ana Lima (ana@example.com)", else the email, else the id. */
export function memberLabel(member) {
  if (member.name) return member.email ? `${member.name} (${member.email})` : member.name;
  return member.email || member.user_id;
}

/** The owner's display name: the member's name or email, else the raw id (null when none). */
export function ownerName(ownerId, members) {
  if (!ownerId) return null;
  const member = members.find((m) => m.user_id === ownerId);
  return member?.name || member?.email || ownerId;
}

/** `[value, text]` options of an owner picker; `current` is kept even when it is not a member. */
export function ownerOptions(members, current, first = [["", "No owner"]]) {
  const options = [...first, ...members.map((m) => [m.user_id, memberLabel(m)])];
  if (current && !members.some((m) => m.user_id === current)) options.push([current, current]);
  return options;
}
