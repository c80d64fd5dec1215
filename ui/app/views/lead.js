// A lead's page: profile with custom fields and social profiles, the heat explanation, the
// timeline (type, platform and date filters in the URL) and a form to add a manual touchpoint
// whose answer updates the heat on screen at once. Writers also edit, merge and delete the lead
// (lead_actions.js); anyone may export it.

import { api, isAbort, qs } from "../api.js";
import { canWrite } from "../auth.js";
import { announce, failure, field, fmtDate, fmtScore, h, heatBadge, leadName, loading, notify, replace, scoreBar, select, timeAgo, trendArrow } from "../dom.js";
import { loadMembers, ownerName } from "../members.js";
import { leadActions } from "./lead_actions.js";
import { INTERACTION_TYPES, MANUAL_TYPES, PLATFORMS, label, verb } from "../vocab.js";

const TIMELINE_FILTERS = ["type", "platform", "from", "to"];

export function mount(root, ctx) {
  const id = ctx.params[0];
  const enc = encodeURIComponent(id);
  const filters = Object.fromEntries(TIMELINE_FILTERS.map((k) => [k, ctx.query.get(k) || ""]));
  let lead = null;
  let timelineItems = [];
  let timelineCursor = null;
  const controller = new AbortController();
  let defs = [];
  let stages = [];
  let members = [];

  const title = h("h1", { tabindex: "-1" }, "Lead");
  const headHeat = h("div", { class: "lead-head__heat", "aria-live": "polite" });
  const profile = h("section", { class: "card", "aria-labelledby": "profile-h" }, h("h2", { id: "profile-h" }, "Profile"), loading());
  const heatPanel = h("section", { class: "card", "aria-labelledby": "heat-h" }, h("h2", { id: "heat-h" }, "Why this heat"), loading());
  const timelineList = h("ol", { class: "timeline" });
  const timelineBody = h("div", {}, loading("Loading the timeline…"));
  const timelineMore = h("button", { type: "button", class: "btn", hidden: true, onclick: () => loadTimeline(true) }, "Older touchpoints");

  // Requests of the first paint, fired together.
  const { signal } = controller;
  const leadRequest = api(`/v1/leads/${enc}`, { signal });
  const heatRequest = api(`/v1/leads/${enc}/heat`, { signal });
  const fieldsRequest = api("/v1/custom-fields", { signal }).catch(() => ({ items: [] }));
  const stagesRequest = api("/v1/pipeline/stages", { signal }).catch(() => ({ items: [] }));
  const membersRequest = loadMembers();
  loadTimeline(false);

  // Timeline filters ------------------------------------------------------------------------------
  const typeFilter = select("type", [["", "All types"], ...INTERACTION_TYPES.map((t) => [t, label(t)])], filters.type);
  const platformFilter = select("platform", [["", "All platforms"], ...PLATFORMS.map((p) => [p, label(p)])], filters.platform);
  const fromFilter = h("input", { type: "date", name: "from", value: filters.from });
  const toFilter = h("input", { type: "date", name: "to", value: filters.to });
  for (const el of [typeFilter, platformFilter, fromFilter, toFilter]) el.id = `tl-${el.name}`;
  const filterForm = h("form", { class: "filters filters--compact", "aria-label": "Filter the timeline" }, field("Type", typeFilter), field("Platform", platformFilter), field("From", fromFilter), field("To", toFilter));
  filterForm.addEventListener("submit", (e) => e.preventDefault());
  filterForm.addEventListener("change", () => {
    for (const el of [typeFilter, platformFilter, fromFilter, toFilter]) filters[el.name] = el.value;
    ctx.setQuery(filters);
    loadTimeline(false);
  });

  // Add a touchpoint -----------------------------------------------------------------------------
  const typeInput = select("type", MANUAL_TYPES.map((t) => [t, label(t)]), "call", { id: "tp-type", required: true });
  const platformInput = select("platform", PLATFORMS.map((p) => [p, label(p)]), "phone", { id: "tp-platform", required: true });
  const whenInput = h("input", { type: "datetime-local", name: "occurred_at", id: "tp-when" });
  const noteInput = h("textarea", { name: "note", id: "tp-note", rows: "2", maxlength: "2000" });
  const submit = h("button", { type: "submit", class: "btn btn--primary" }, "Add touchpoint");
  const formError = h("p", { class: "field-error", role: "alert", hidden: true });
  const addForm = h(
    "form",
    { class: "touch-form", "aria-labelledby": "add-h" },
    h("h2", { id: "add-h" }, "Add a touchpoint"),
    h("div", { class: "grid2" }, field("Type", typeInput), field("Platform", platformInput)),
    field("When", whenInput, "Leave empty for now."),
    field("Note", noteInput),
    formError,
    h("div", { class: "actions" }, submit),
  );
  addForm.addEventListener("submit", addTouchpoint);

  const actionBar = h("div", { class: "lead-actions", role: "group", "aria-label": "Lead actions", hidden: true });
  const actions = leadActions(actionBar, {
    id,
    writer: canWrite(),
    lead: () => lead,
    members: () => members,
    // A saved edit or merge: the lead as the API answered it, on screen at once.
    saved(next) {
      lead = next;
      renderHead();
      renderProfile();
      api(`/v1/leads/${enc}/heat`).then(renderHeat, () => {});
      loadTimeline(false);
    },
    erased: () => ctx.navigate("/app/leads"),
  });

  replace(
    root,
    h("p", { class: "crumbs" }, h("a", { href: "/app/leads" }, "← All leads")),
    h("div", { class: "page-head lead-head" }, title, headHeat),
    actionBar,
    h(
      "div",
      { class: "lead-layout" },
      h("div", { class: "lead-side" }, profile, heatPanel),
      h(
        "div",
        { class: "lead-main" },
        h("section", { class: "card" }, addForm),
        h("section", { class: "card", "aria-labelledby": "tl-h" }, h("h2", { id: "tl-h" }, "Timeline"), filterForm, timelineBody, h("div", { class: "more" }, timelineMore)),
      ),
    ),
  );

  // Rendering ------------------------------------------------------------------------------------
  Promise.all([leadRequest, fieldsRequest, stagesRequest, membersRequest]).then(
    ([l, d, s, m]) => {
      lead = l;
      defs = d.items || [];
      stages = s.items || [];
      members = m;
      renderHead();
      renderProfile();
      actions.show();
    },
    (error) => {
      if (isAbort(error)) return;
      ctx.setTitle("Lead not found");
      title.textContent = error.status === 404 ? "Lead not found" : "Lead";
      replace(profile, h("h2", { id: "profile-h" }, "Profile"), failure(error, "The lead"));
    },
  );
  heatRequest.then(renderHeat, (error) => !isAbort(error) && replace(heatPanel, h("h2", { id: "heat-h" }, "Why this heat"), failure(error, "The heat explanation")));

  function renderHead() {
    ctx.setTitle(leadName(lead));
    title.textContent = leadName(lead);
    replace(headHeat, h("span", { id: "lead-heat", class: "heatcell heatcell--big", "data-level": lead.heat_level }, heatBadge(lead.heat_level, lead.heat_score), scoreBar(lead.heat_score, lead.heat_level), trendArrow(lead.heat_trend)));
  }

  function renderProfile() {
    const stageName = stages.find((s) => s.id === lead.stage_id)?.name;
    const item = (term, value) => [h("dt", {}, term), h("dd", {}, value ?? h("span", { class: "muted" }, "—"))];
    const detail = lead.source_detail && Object.keys(lead.source_detail).length ? Object.entries(lead.source_detail).map(([k, v]) => `${label(k)}: ${v}`).join(", ") : null;
    const custom = Object.entries(lead.custom_fields || {});
    const defLabel = (key) => defs.find((d) => d.key === key)?.label || label(key);
    const customValue = (v) => (Array.isArray(v) ? v.join(", ") : typeof v === "boolean" ? (v ? "Yes" : "No") : String(v));
    replace(
      profile,
      h("h2", { id: "profile-h" }, "Profile"),
      h(
        "dl",
        { class: "props" },
        item("Title", [lead.title, lead.company].filter(Boolean).join(" at ") || null),
        item("Email", lead.email && h("a", { href: `mailto:${lead.email}` }, lead.email)),
        item("Phone", lead.phone && h("a", { href: `tel:${lead.phone}` }, lead.phone)),
        item("Source", [label(lead.source), detail && h("div", { class: "sub" }, detail)]),
        item("Stage", stageName || null),
        item("Owner", ownerName(lead.owner_id, members)),
        item("Tags", lead.tags?.length ? lead.tags.map((t) => h("span", { class: "tag" }, t)) : null),
        item("Last touchpoint", timeAgo(lead.last_interaction_at)),
        item("Added", fmtDate(lead.created_at)),
      ),
      h("h3", {}, "Custom fields"),
      custom.length ? h("dl", { class: "props" }, custom.map(([k, v]) => item(defLabel(k), customValue(v)))) : h("p", { class: "muted" }, "None set."),
      h("h3", {}, "Social profiles"),
      lead.social_profiles?.length
        ? h(
            "ul",
            { class: "socials" },
            lead.social_profiles.map((p) =>
              h("li", {}, h("span", { class: `platform platform--${p.platform}` }, label(p.platform)), " ", p.url ? h("a", { href: p.url, rel: "noopener noreferrer", target: "_blank" }, p.handle ? `@${p.handle}` : p.url) : p.handle ? `@${p.handle}` : p.platform_user_id),
            ),
          )
        : h("p", { class: "muted" }, "None known."),
    );
  }

  function renderHeat(heat) {
    const lines = heat.breakdown || [];
    replace(
      heatPanel,
      h("h2", { id: "heat-h" }, "Why this heat"),
      h("p", {}, heatBadge(heat.level, heat.score), " ", `Score ${fmtScore(heat.score)}. WARM from ${heat.thresholds?.warm ?? 6}, HOT from ${heat.thresholds?.hot ?? 16} points.`),
      lines.length
        ? h(
            "table",
            { class: "table table--compact" },
            h("caption", { class: "sr-only" }, "Points by touchpoint type"),
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Touchpoint"), h("th", { scope: "col", class: "num" }, "Count"), h("th", { scope: "col", class: "num" }, "Points"))),
            h("tbody", {}, lines.map((line) => h("tr", {}, h("th", { scope: "row" }, label(line.type)), h("td", { class: "num" }, line.count), h("td", { class: "num" }, fmtScore(line.points))))),
          )
        : h("p", { class: "muted" }, "No touchpoints have earned points yet."),
      h("p", { class: "hint" }, heat.decay_half_life_days ? `Points halve every ${heat.decay_half_life_days} days.` : "Points do not decay."),
    );
  }

  function timelineItem(item) {
    const meta = item.metadata || {};
    const text = meta.note || meta.message || meta.text;
    return h(
      "li",
      { class: "timeline__item", dataset: { type: item.type, platform: item.platform } },
      h("div", { class: "timeline__when" }, timeAgo(item.occurred_at)),
      h(
        "div",
        {},
        h("strong", {}, label(item.type)),
        " ",
        h("span", { class: `platform platform--${item.platform}` }, label(item.platform)),
        " ",
        item.points ? h("span", { class: "points" }, `+${fmtScore(item.points)}`) : null,
        h("div", { class: "sub" }, `${verb(item.type)} · ${label(item.captured_by)}`),
        text && h("blockquote", {}, text),
      ),
    );
  }

  function renderTimeline() {
    if (!timelineItems.length) replace(timelineBody, h("p", { class: "muted" }, "No touchpoints match these filters."));
    else {
      replace(timelineList, timelineItems.map(timelineItem));
      replace(timelineBody, timelineList);
    }
    timelineMore.hidden = !timelineCursor;
  }

  async function loadTimeline(more, limit = 50) {
    try {
      const page = await api(`/v1/leads/${enc}/timeline${qs({ ...filters, limit, cursor: more ? timelineCursor : "" })}`, { signal: controller.signal });
      timelineItems = more ? timelineItems.concat(page.items || []) : page.items || [];
      timelineCursor = page.next_cursor;
      renderTimeline();
    } catch (error) {
      if (!isAbort(error)) replace(timelineBody, failure(error, "The timeline"));
    }
  }

  async function addTouchpoint(event) {
    event.preventDefault();
    formError.hidden = true;
    const body = { type: typeInput.value, platform: platformInput.value };
    if (whenInput.value) body.occurred_at = new Date(whenInput.value).toISOString();
    if (noteInput.value.trim()) body.metadata = { note: noteInput.value.trim() };
    submit.disabled = true;
    submit.textContent = "Adding…";
    try {
      const answer = await api(`/v1/leads/${enc}/interactions`, { method: "POST", body, headers: { "Idempotency-Key": crypto.randomUUID() } });
      const before = lead?.heat_level;
      // The answer carries the rescored lead: the badge changes now, not at the next refresh.
      lead = answer.lead;
      renderHead();
      if (!filters.type || filters.type === answer.interaction.type) {
        timelineItems = [answer.interaction, ...timelineItems.filter((i) => i.id !== answer.interaction.id)];
        renderTimeline();
      }
      noteInput.value = "";
      whenInput.value = "";
      const change = before && before !== lead.heat_level ? ` Heat changed from ${before} to ${lead.heat_level}.` : "";
      announce(`Touchpoint added. Heat is ${lead.heat_level}, score ${fmtScore(lead.heat_score)}.${change}`);
      if (change) notify(`${leadName(lead)} is now ${lead.heat_level}.`, "success");
      api(`/v1/leads/${enc}/heat`).then(renderHeat, () => {});
    } catch (error) {
      formError.textContent = `The touchpoint was not added: ${error.message}`;
      formError.hidden = false;
    } finally {
      submit.disabled = false;
      submit.textContent = "Add touchpoint";
    }
  }

  return {
    async refresh() {
      const [l, heat] = await Promise.all([api(`/v1/leads/${enc}`).catch(() => null), api(`/v1/leads/${enc}/heat`).catch(() => null), loadTimeline(false, Math.min(200, Math.max(50, timelineItems.length)))]);
      if (l) {
        lead = l;
        renderHead();
        renderProfile();
      }
      if (heat) renderHeat(heat);
    },
    unmount() {
      controller.abort();
    },
  };
}
