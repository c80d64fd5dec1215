// The leads table: heat badges, score bars and trends; filters and sort kept in the URL query;
// infinite scroll over the cursor API (`next_cursor`).

import { api, isAbort, qs } from "../api.js";
import { debounce, failure, field, h, heatCell, keepingFocus, leadName, loading, replace, select, setText, timeAgo } from "../dom.js";
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

  // Requests of the first paint, fired together.
  const stagesRequest = api("/v1/pipeline/stages").catch(() => ({ items: [] }));

  const count = h("p", { class: "count", role: "status", "aria-live": "polite" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "table leads-table" },
    h("caption", { class: "sr-only" }, "Leads, sorted and filtered by the controls above"),
    h("thead", {}, h("tr", {}, headerCell("Lead", "name"), h("th", { scope: "col" }, "Company"), headerCell("Heat", "heat"), h("th", { scope: "col" }, "Stage"), h("th", { scope: "col" }, "Source"), h("th", { scope: "col" }, "Owner"), h("th", { scope: "col" }, "Tags"), headerCell("Last touchpoint", "last"), headerCell("Added", "created"))),
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
  const owner = h("input", { type: "text", name: "owner_id", value: state.owner_id, placeholder: "Owner user id", autocomplete: "off" });
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

  replace(
    root,
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Leads"), count),
    form,
    body,
    h("div", { class: "more" }, more),
    sentinel,
  );

  stagesRequest.then((answer) => {
    stages = new Map((answer.items || []).map((s) => [s.id, s.name]));
    for (const s of answer.items || []) stage.append(h("option", { value: s.id, selected: s.id === state.stage_id }, s.name));
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
    return h(
      "tr",
      { dataset: { leadId: lead.id, heat: lead.heat_level } },
      h("th", { scope: "row" }, h("a", { href: `/app/leads/${encodeURIComponent(lead.id)}` }, leadName(lead)), lead.email && h("div", { class: "sub" }, lead.email)),
      h("td", {}, lead.company || h("span", { class: "muted" }, "—")),
      h("td", {}, heatCell(lead)),
      h("td", {}, stages.get(lead.stage_id) || (lead.stage_id ? h("span", { class: "muted" }, "…") : h("span", { class: "muted" }, "—"))),
      h("td", {}, label(lead.source)),
      h("td", {}, lead.owner_id || h("span", { class: "muted" }, "—")),
      h("td", {}, (lead.tags || []).map((t) => h("span", { class: "tag" }, t))),
      h("td", {}, timeAgo(lead.last_interaction_at)),
      h("td", {}, timeAgo(lead.created_at)),
    );
  }

  function renderRows() {
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
