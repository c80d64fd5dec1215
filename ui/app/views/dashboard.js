// The dashboard: totals against the previous window, heat distribution, leads by source and by
// stage (funnel), social engagement by platform over time, and the trending leads. The window is
// selectable and kept in the URL (?window_days=N).

import { api, isAbort, qs } from "../api.js";
import { claims } from "../auth.js";
import { bars, funnel, lines, s } from "../charts.js";
import { announce, failure, field, fmtNumber, fmtScore, h, heatBadge, leadName, loading, notify, replace, select, setText } from "../dom.js";
import { HEAT_LEVELS, SOCIAL_PLATFORMS, SOURCES, label } from "../vocab.js";

const WINDOWS = [7, 14, 30, 90, 180, 365];
const HEAT_COLORS = { COLD: "#2563eb", WARM: "#b45309", HOT: "#dc2626" };
export const PLATFORM_STYLE = {
  facebook: { color: "#1d4ed8", dash: null },
  instagram: { color: "#be185d", dash: "7 4" },
  linkedin: { color: "#0f766e", dash: "2 4" },
};

export function mount(root, ctx) {
  ctx.setTitle("Dashboard");
  let days = Number(ctx.query.get("window_days")) || 30;
  let controller = null;

  const windowSelect = select("window_days", WINDOWS.map((d) => [d, `Last ${d} days`]), days, { id: "window-days" });
  windowSelect.addEventListener("change", () => {
    days = Number(windowSelect.value);
    ctx.setQuery({ window_days: days === 30 ? "" : days });
    load();
  });
  const content = h("div", { class: "dashboard" }, loading("Loading the dashboard…"));
  replace(root, h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Dashboard"), h("form", { class: "inline-form", onsubmit: (e) => e.preventDefault() }, field("Window", windowSelect))), content);

  async function load() {
    controller?.abort();
    controller = new AbortController();
    const { signal } = controller;
    content.setAttribute("aria-busy", "true");
    try {
      // One request: the figures include the day-by-day engagement series.
      const data = await api(`/v1/dashboard${qs({ window_days: days })}`, { signal });
      render(data);
      if ((data.totals?.leads?.value ?? 0) === 0) {
        const card = await emptyWorkspace(signal);
        if (!signal.aborted) content.prepend(card);
      }
    } catch (error) {
      if (!isAbort(error)) replace(content, failure(error, "The dashboard"));
    } finally {
      if (!signal.aborted) content.removeAttribute("aria-busy");
    }
  }

  // An org without leads: how leads arrive, and in development an offer to load the demo
  // workspace (admins only; the API decides whether this deployment offers it).
  async function emptyWorkspace(signal) {
    const demo = await api("/v1/demo-data", { signal }).catch(() => ({ available: false }));
    const isAdmin = claims()?.role === "admin";
    const offer = demo.available && isAdmin;
    const button = offer ? h("button", { type: "button", class: "btn btn--primary", id: "load-demo" }, "Load demo data") : null;
    const status = h("p", { class: "hint", role: "status" });
    button?.addEventListener("click", async () => {
      button.disabled = true;
      setText(status, "Loading the demo workspace…");
      try {
        const loaded = await api("/v1/demo-data", { method: "POST" });
        const text = `Loaded ${fmtNumber(loaded.leads)} demo leads with ${fmtNumber(loaded.touchpoints)} touchpoints; ${fmtNumber(loaded.hot)} are HOT.`;
        notify(text);
        announce(text);
        load();
      } catch (error) {
        button.disabled = false;
        setText(status, `The demo could not be loaded: ${error.message}`);
      }
    });
    return h(
      "section",
      { class: "card empty-workspace", "aria-labelledby": "empty-workspace-title" },
      h("h2", { id: "empty-workspace-title" }, "No leads yet"),
      h("p", {}, "Leads arrive from connected Facebook, Instagram and LinkedIn accounts, from your website's tracking snippet, or when you add them on the ", h("a", { href: "/app/leads" }, "Leads"), " page."),
      offer ? h("p", {}, "To see Leadheat working first, load a demo workspace: leads from every source, touchpoints over the last four weeks, a filled pipeline and a few HOT leads. Demo leads are tagged ", h("code", {}, "demo"), ".") : null,
      button,
      status,
    );
  }

  function kpi(name, figure) {
    const change = figure?.change ?? 0;
    const pct = figure?.change_pct;
    const cls = change > 0 ? "up" : change < 0 ? "down" : "flat";
    const words = change === 0 ? "no change" : `${change > 0 ? "+" : ""}${fmtNumber(change)}${pct != null ? ` (${pct > 0 ? "+" : ""}${pct}%)` : ""}`;
    return h(
      "div",
      { class: "kpi", dataset: { kpi: name } },
      h("div", { class: "kpi__label" }, name),
      h("div", { class: "kpi__value" }, fmtNumber(figure?.value ?? 0)),
      figure?.previous == null
        ? h("div", { class: "kpi__change" }, `in ${days} days`)
        : h("div", { class: `kpi__change kpi__change--${cls}` }, h("span", { "aria-hidden": "true" }, change > 0 ? "▲ " : change < 0 ? "▼ " : ""), words, h("span", { class: "sr-only" }, " against the previous window")),
    );
  }

  function figure(title, chart, ...extra) {
    const id = `fig-${title.toLowerCase().replace(/\W+/g, "-")}`;
    const wide = title.startsWith("Social engagement");
    return h("figure", { class: `card chart-card${wide ? " chart-card--wide" : ""}`, "aria-labelledby": id }, h("figcaption", { id }, h("h2", {}, title)), chart, ...extra);
  }

  function trendList(title, rows, kind) {
    return h(
      "section",
      { class: "card", "aria-labelledby": `trend-${kind}` },
      h("h2", { id: `trend-${kind}` }, title),
      rows.length
        ? h(
            "ol",
            { class: "trending" },
            rows.map((r) =>
              h(
                "li",
                {},
                h("a", { href: `/app/leads/${encodeURIComponent(r.id)}` }, leadName(r)),
                r.company && h("span", { class: "sub" }, ` ${r.company}`),
                " ",
                heatBadge(r.heat_level, r.heat_score),
                h("span", { class: `delta delta--${kind}` }, `${r.change > 0 ? "+" : ""}${fmtScore(r.change)}`),
              ),
            ),
          )
        : h("p", { class: "muted" }, kind === "rising" ? "No lead heated up in this window." : "No lead cooled down in this window."),
    );
  }

  // Daily points up to a month, weekly up to half a year, then 30-day buckets: runs of
  // consecutive days of the API's exact per-day series (oldest first), added up per platform.
  function engagementSeries(byDay) {
    const size = days <= 31 ? 1 : days <= 180 ? 7 : 30;
    const buckets = [];
    const values = Object.fromEntries(SOCIAL_PLATFORMS.map((p) => [p, []]));
    byDay.forEach((entry, i) => {
      if (i % size === 0) {
        buckets.push(new Date(`${entry.day}T00:00:00Z`));
        for (const p of SOCIAL_PLATFORMS) values[p].push(0);
      }
      for (const p of SOCIAL_PLATFORMS) values[p][values[p].length - 1] += entry[p] ?? 0;
    });
    return { buckets, values };
  }

  function render(data) {
    const totals = data.totals || {};
    const engagement = data.social_engagement || { by_platform: {}, by_type: {}, total: 0 };
    const byDay = engagement.by_day || [];
    const { buckets, values } = engagementSeries(byDay);
    // The series' days are UTC days: label them as such whatever the browser's time zone.
    const fmtTick = (d) => d.toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
    const engagementChart = lines(
      SOCIAL_PLATFORMS.map((p) => ({ key: p, label: label(p), ...PLATFORM_STYLE[p], values: values[p] })),
      buckets,
      { title: `Social touchpoints per ${days <= 31 ? "day" : days <= 180 ? "week" : "month"} by platform`, fmtTick },
    );
    engagementChart.setAttribute("data-days", byDay.length);
    const legend = h(
      "ul",
      { class: "legend" },
      SOCIAL_PLATFORMS.map((p) =>
        h(
          "li",
          { dataset: { platform: p } },
          s("svg", { class: "legend__swatch", viewBox: "0 0 24 8", "aria-hidden": "true" }, s("line", { x1: 0, y1: 4, x2: 24, y2: 4, stroke: PLATFORM_STYLE[p].color, "stroke-width": 3, "stroke-dasharray": PLATFORM_STYLE[p].dash })),
          label(p),
          " ",
          h("strong", { class: "legend__total", dataset: { platformTotal: p } }, fmtNumber(engagement.by_platform?.[p]?.total ?? 0)),
        ),
      ),
    );
    const byType = Object.entries(engagement.by_type || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);

    replace(
      content,
      h(
        "section",
        { class: "kpis", "aria-label": `Totals of the last ${days} days` },
        kpi("Leads", totals.leads),
        kpi("New leads", totals.new_leads),
        kpi("Touchpoints", totals.touchpoints),
        kpi("HOT leads", totals.hot_leads),
        kpi("Social engagement", { value: engagement.total ?? 0 }),
      ),
      h(
        "div",
        { class: "grid" },
        figure("Heat distribution", bars(HEAT_LEVELS.map((l) => ({ key: l, label: l, value: data.by_heat_level?.[l] ?? 0, color: HEAT_COLORS[l] })), { title: "Leads by heat level" })),
        figure("Leads by source", bars(SOURCES.map((src) => ({ key: src, label: label(src), value: data.by_source?.[src] ?? 0 })).sort((a, b) => b.value - a.value), { title: "Leads by source", color: "#4f46e5" })),
        figure("Pipeline funnel", funnel((data.by_stage || []).map((st) => ({ key: st.stage_id, label: st.name, value: st.count })), { title: "Leads by stage" }), data.unstaged ? h("p", { class: "hint" }, `${fmtNumber(data.unstaged)} lead(s) in no stage.`) : null),
        figure("Social engagement by platform", engagementChart, legend),
        byType.length ? figure("Engagement by type", bars(byType.map(([t, n]) => ({ key: t, label: label(t), value: n })), { title: "Social touchpoints by type", color: "#0f766e", labelWidth: 150 })) : null,
        trendList("Heating up", data.trending?.rising || [], "rising"),
        trendList("Cooling down", data.trending?.falling || [], "falling"),
      ),
    );
  }

  load();
  return {
    refresh: load,
    unmount: () => controller?.abort(),
  };
}
