// The leads table: heat badges, score bars and trends; filters and sort kept in the URL query;
// infinite scroll over the cursor API (`next_cursor`). Writers also get "New lead" (a form
// dialog) and row checkboxes with a bulk bar (assign owner, add tag, move stage).

import { api, isAbort, qs } from "../api.js";
import { canWrite } from "../auth.js";
import { debounce, failure, field, h, heatCell, keepingFocus, leadName, loading, notify, replace, select, setText, timeAgo } from "../dom.js";
import { clearErrors, leadFields, openDialog, readLeadForm, showErrors } from "../forms.js";
import { loadMembers, ownerName, ownerOptions } from "../members.js";
import { HEAT_LEVELS, LEAD_SORTS, SOURCES, label } from "../vocab.js";

const FILTERS = ["q", "heat_level", "source", "stage_id", "owner_id", "tag", "sort"];
const PAGE = 50;
const MAX_REFRESH = 200;

// Column header sorts: [title, ascending sort, descending sort, first click]
const SORTABLE = {
  name: ["name", "-name", "name"],
  heat: ["heat_score", "-heat_score", "-heat_score"],
  last: ["last_interaction_at", "-last_interaction_at", "-last_interaction_at"],
  created: ["created_at", "-created_at", "-created_at"],
};

export function mount(root, ctx) {
  ctx.setTitle("Leads");
  const state = Object.fromEntries(FILTERS.map((k) => [k, ctx.query.get(k) || ""]));
  let rows = [];
  let nextCursor = null;
  let controller = null;
  let loadingMore = false;
  let stages = new Map();
  let members = [];
  const writer = canWrite();
  // Ids of the checked rows (kept across refreshes while the lead is still listed).
  const selected = new Set();

  // Requests of the first paint, fired together.
  const stagesRequest = api("/v1/pipeline/stages").catch(() => ({ items: [] }));
  const membersRequest = loadMembers();

  const count = h("p", { class: "count", role: "status", "aria-live": "polite" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "table leads-table" },
    h("caption", { class: "sr-only" }, "Leads, sorted and filtered by the controls above"),
    h("thead", {}, h("tr", {}, writer && h("td", { class: "check" }, h("input", { type: "checkbox", id: "select-all", "aria-label": "Select every lead shown", onchange: (e) => selectAll(e.target.checked) })), headerCell("Lead", "name"), h("th", { scope: "col" }, "Company"), headerCell("Heat", "heat"), h("th", { scope: "col" }, "Stage"), h("th", { scope: "col" }, "Source"), h("th", { scope: "col" }, "Owner"), h("th", { scope: "col" }, "Tags"), headerCell("Last touchpoint", "last"), headerCell("Added", "created"))),
    tbody,
  );
  const more = h("button", { type: "button", class: "btn", hidden: true, onclick: () => loadMore() }, "Load more leads");
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const body = h("div", { class: "table-wrap" }, loading("Loading leads…"));

  // Filters -------------------------------------------------------------------------------------
  const search = h("input", { type: "search", name: "q", value: state.q, placeholder: "Name, email or company", autocomplete: "off" });
  const heat = select("heat_level", [["", "Any heat"], ...HEAT_LEVELS.map((l) => [l, l])], state.heat_level);
  const source = select("source", [["", "Any source"], ...SOURCES.map((s) => [s, label(s)])], state.source);
  const stage = select("stage_id", [["", "Any stage"]], state.stage_id);
  const owner = select("owner_id", ownerOptions([], state.owner_id, [["", "Any owner"]]), state.owner_id);
  const tag = h("input", { type: "text", name: "tag", value: state.tag, placeholder: "e.g. vip", autocomplete: "off" });
  const sort = select("sort", LEAD_SORTS, state.sort || "-heat_score");
  const clear = h("button", { type: "button", class: "btn btn--quiet", onclick: () => clearFilters() }, "Clear filters");
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter leads" },
    field("Search", search),
    field("Heat level", heat),
    field("Source", source),
    field("Stage", stage),
    field("Owner", owner),
    field("Tag", tag),
    field("Sort by", sort),
    h("div", { class: "field field--action" }, clear),
  );
  form.addEventListener("submit", (e) => e.preventDefault());
  const applyNow = () => {
    for (const el of [search, heat, source, stage, owner, tag, sort]) state[el.name] = el.value.trim();
    if (state.sort === "-heat_score") state.sort = "";
    ctx.setQuery(state);
    refreshHeaders();
    reload();
  };
  const applySoon = debounce(applyNow, 250);
  form.addEventListener("input", (e) => e.target.tagName === "INPUT" && applySoon());
  form.addEventListener("change", (e) => e.target.tagName === "SELECT" && applyNow());
  function clearFilters() {
    for (const el of [search, heat, source, stage, owner, tag]) el.value = "";
    sort.value = "-heat_score";
    applyNow();
    search.focus();
  }

  const newLead = writer && h("button", { type: "button", class: "btn btn--primary", onclick: () => createLead() }, "New lead");
  const bulkBar = writer ? bulkActions() : null;

  replace(
    root,
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Leads"), count, newLead),
    form,
    bulkBar?.el,
    body,
    h("div", { class: "more" }, more),
    sentinel,
  );

  stagesRequest.then((answer) => {
    stages = new Map((answer.items || []).map((s) => [s.id, s.name]));
    for (const s of answer.items || []) stage.append(h("option", { value: s.id, selected: s.id === state.stage_id }, s.name));
    if (rows.length) renderRows();
    bulkBar?.setStages(answer.items || []);
  });
  membersRequest.then((list) => {
    members = list;
    replace(owner, ownerOptions(members, state.owner_id, [["", "Any owner"]]).map(([value, text]) => h("option", { value, selected: value === state.owner_id }, text)));
    bulkBar?.setMembers(members);
    if (rows.length) renderRows();
  });

  // Table ---------------------------------------------------------------------------------------
  function headerCell(text, key) {
    const [asc, desc, first] = SORTABLE[key];
    const glyph = h("span", { class: "sort__glyph", "aria-hidden": "true" });
    const button = h("button", { type: "button", class: "sort" }, text, glyph);
    const th = h("th", { scope: "col", dataset: { sortKey: key } }, button);
    button.addEventListener("click", () => {
      const sorted = th.getAttribute("aria-sort");
      sort.value = sorted === "descending" ? asc : sorted === "ascending" ? desc : first;
      applyNow();
    });
    return th;
  }

  /** aria-sort and the arrow of each sortable column header, from the current sort. */
  function refreshHeaders() {
    const current = state.sort || "-heat_score";
    for (const th of table.querySelectorAll("th[data-sort-key]")) {
      const [asc, desc] = SORTABLE[th.dataset.sortKey];
      const sorted = current === asc ? "ascending" : current === desc ? "descending" : "none";
      th.setAttribute("aria-sort", sorted);
      th.querySelector(".sort__glyph").textContent = sorted === "ascending" ? " ▲" : sorted === "descending" ? " ▼" : "";
    }
  }

  function row(lead) {
    const check =
      writer &&
      h(
        "td",
        { class: "check" },
        h("input", { type: "checkbox", class: "row-check", value: lead.id, checked: selected.has(lead.id), "aria-label": `Select ${leadName(lead)}`, onchange: (e) => toggle(lead.id, e.target.checked) }),
      );
    return h(
      "tr",
      { dataset: { leadId: lead.id, heat: lead.heat_level } },
      check,
      h("th", { scope: "row" }, h("a", { href: `/app/leads/${encodeURIComponent(lead.id)}` }, leadName(lead)), lead.email && h("div", { class: "sub" }, lead.email)),
      h("td", {}, lead.company || h("span", { class: "muted" }, "—")),
      h("td", {}, heatCell(lead)),
      h("td", {}, stages.get(lead.stage_id) || (lead.stage_id ? h("span", { class: "muted" }, "…") : h("span", { class: "muted" }, "—"))),
      h("td", {}, label(lead.source)),
      h("td", {}, ownerName(lead.owner_id, members) || h("span", { class: "muted" }, "—")),
      h("td", {}, (lead.tags || []).map((t) => h("span", { class: "tag" }, t))),
      h("td", {}, timeAgo(lead.last_interaction_at)),
      h("td", {}, timeAgo(lead.created_at)),
    );
  }

  function renderRows() {
    const listed = new Set(rows.map((r) => r.id));
    for (const id of selected) if (!listed.has(id)) selected.delete(id);
    bulkBar?.update();
    if (!rows.length) {
      replace(body, h("div", { class: "empty" }, h("p", {}, "No leads match these filters."), h("button", { type: "button", class: "btn", onclick: () => clearFilters() }, "Clear filters")));
    } else {
      replace(tbody, rows.map(row));
      if (body.firstChild !== table) replace(body, table);
    }
    more.hidden = !nextCursor;
    setText(count, `${rows.length}${nextCursor ? "+" : ""} lead${rows.length === 1 ? "" : "s"}`);
  }

  function query(extra) {
    return qs({ ...state, sort: state.sort || "-heat_score", ...extra });
  }

  async function reload(limit = PAGE) {
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    body.setAttribute("aria-busy", "true");
    try {
      const page = await api(`/v1/leads${query({ limit })}`, { signal });
      rows = page.items || [];
      nextCursor = page.next_cursor;
      renderRows();
    } catch (error) {
      if (!isAbort(error)) replace(body, failure(error, "Leads"));
    } finally {
      if (!signal.aborted) body.removeAttribute("aria-busy");
    }
  }

  async function loadMore() {
    if (!nextCursor || loadingMore) return;
    loadingMore = true;
    const signal = controller?.signal;
    try {
      const page = await api(`/v1/leads${query({ limit: PAGE, cursor: nextCursor })}`, { signal });
      const known = new Set(rows.map((r) => r.id));
      const fresh = (page.items || []).filter((r) => !known.has(r.id));
      rows = rows.concat(fresh);
      nextCursor = page.next_cursor;
      tbody.append(...fresh.map(row));
      more.hidden = !nextCursor;
      setText(count, `${rows.length}${nextCursor ? "+" : ""} leads`);
    } catch (error) {
      if (!isAbort(error)) more.after(failure(error, "More leads"));
    } finally {
      loadingMore = false;
    }
  }

  // Selection, bulk actions and new leads (writers only) -----------------------------------------
  function toggle(id, on) {
    if (on) selected.add(id);
    else selected.delete(id);
    bulkBar?.update();
  }

  function selectAll(on) {
    for (const box of tbody.querySelectorAll("input.row-check")) {
      box.checked = on;
      toggle(box.value, on);
    }
  }

  function bulkActions() {
    const status = h("p", { class: "bulkbar__count", role: "status" });
    const action = select("action", [["assign_owner", "Assign owner"], ["add_tag", "Add tag"], ["move_stage", "Move to stage"]], "assign_owner", { id: "bulk-action" });
    const ownerPick = select("owner_id", [["", "No owner"]], "", { id: "bulk-owner" });
    const tagInput = h("input", { type: "text", name: "tag", id: "bulk-tag", autocomplete: "off", maxlength: "50" });
    const stagePick = select("stage_id", [], "", { id: "bulk-stage" });
    const inputs = { assign_owner: field("New owner", ownerPick), add_tag: field("Tag to add", tagInput), move_stage: field("Target stage", stagePick) };
    const error = h("p", { class: "field-error", role: "alert", hidden: true });
    const apply = h("button", { type: "submit", class: "btn btn--primary" }, "Apply to selected");
    const clearSelection = h("button", { type: "button", class: "btn btn--quiet", onclick: () => (selected.clear(), renderRows()) }, "Clear selection");
    const el = h("form", { class: "bulkbar", "aria-label": "Bulk actions on the selected leads", hidden: true }, status, field("Action", action), Object.values(inputs), h("div", { class: "field field--action" }, apply), h("div", { class: "field field--action" }, clearSelection), error);
    const showInput = () => Object.entries(inputs).forEach(([name, input]) => (input.hidden = name !== action.value));
    action.addEventListener("change", showInput);
    showInput();
    el.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const body = { ids: [...selected], action: action.value };
      if (action.value === "assign_owner") body.owner_id = ownerPick.value || null;
      if (action.value === "add_tag") body.tag = tagInput.value.trim();
      if (action.value === "move_stage") body.stage_id = stagePick.value;
      apply.disabled = true;
      try {
        const answer = await api("/v1/leads/bulk", { method: "POST", body, headers: { "Idempotency-Key": crypto.randomUUID() } });
        const { ok = 0, not_found: gone = 0, error: refused = 0 } = answer.counts || {};
        const why = (answer.results || []).filter((r) => r.status === "error").map((r) => r.detail);
        const text = [`${ok} lead${ok === 1 ? "" : "s"} updated`, gone && `${gone} no longer found`, refused && `${refused} refused (${why.join("; ")})`].filter(Boolean).join(", ");
        notify(`${text}.`, gone || refused ? "error" : "success");
        selected.clear();
        await reload(Math.min(MAX_REFRESH, Math.max(PAGE, rows.length)));
      } catch (failed) {
        error.textContent = `Nothing was changed: ${failed.message}`;
        error.hidden = false;
      } finally {
        apply.disabled = false;
      }
    });
    return {
      el,
      update() {
        el.hidden = selected.size === 0;
        setText(status, `${selected.size} selected`);
        const all = table.querySelector("#select-all");
        if (all) {
          all.checked = rows.length > 0 && rows.every((r) => selected.has(r.id));
          all.indeterminate = selected.size > 0 && !all.checked;
        }
      },
      setStages: (list) => replace(stagePick, list.map((s) => h("option", { value: s.id }, s.name))),
      setMembers: (list) => replace(ownerPick, ownerOptions(list, "", [["", "No owner (unassign)"]]).map(([value, text]) => h("option", { value }, text))),
    };
  }

  async function createLead() {
    // The owner picker needs the members: a click before they arrived waits for them.
    members = await membersRequest;
    const summary = h("p", { class: "field-error", role: "alert", tabindex: "-1", hidden: true });
    const submit = h("button", { type: "submit", class: "btn btn--primary" }, "Create lead");
    const cancel = h("button", { type: "button", class: "btn" }, "Cancel");
    const form = h("form", { class: "lead-form", novalidate: true }, leadFields(null, members, "new"), summary, h("div", { class: "actions" }, cancel, submit));
    const dialog = openDialog({ title: "New lead", content: form, wide: true });
    cancel.addEventListener("click", () => dialog.close());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(form, summary);
      const body = Object.fromEntries(Object.entries(readLeadForm(form)).filter(([, v]) => v !== null && !(Array.isArray(v) && !v.length)));
      submit.disabled = true;
      try {
        // A key per attempt: a corrected body is a new request.
        const lead = await api("/v1/leads", { method: "POST", body, headers: { "Idempotency-Key": crypto.randomUUID() } });
        dialog.close();
        notify(`${leadName(lead)} is saved.`, "success");
        ctx.navigate(`/app/leads/${encodeURIComponent(lead.id)}`);
      } catch (error) {
        showErrors(form, error, summary);
      } finally {
        submit.disabled = false;
      }
    });
  }

  // Infinite scroll: the sentinel below the table asks for the next page as it nears the viewport.
  const observer = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && loadMore(), { rootMargin: "600px 0px" });
  observer.observe(sentinel);

  refreshHeaders();
  reload();

  return {
    // Live update: the rows on screen again, in one request (up to 200).
    refresh: () => keepingFocus(body, "data-lead-id", () => reload(Math.min(MAX_REFRESH, Math.max(PAGE, rows.length)))),
    unmount() {
      observer.disconnect();
      controller?.abort();
    },
  };
}
