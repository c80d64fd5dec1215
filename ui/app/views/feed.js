// The org-wide social feed (GET /v1/feed), filterable by platform and type (kept in the URL),
// newest first, with infinite scroll.

import { api, isAbort, qs } from "../api.js";
import { failure, field, fmtScore, h, heatBadge, keepingFocus, leadName, loading, replace, select, setText, timeAgo } from "../dom.js";
import { SOCIAL_PLATFORMS, SOCIAL_TYPES, label, verb } from "../vocab.js";

const PAGE = 50;

export function mount(root, ctx) {
  ctx.setTitle("Social feed");
  const state = { platform: ctx.query.get("platform") || "", type: ctx.query.get("type") || "" };
  let items = [];
  let nextCursor = null;
  let controller = null;
  let loadingMore = false;

  const platforms = h(
    "fieldset",
    { class: "segmented" },
    h("legend", {}, "Platform"),
    [["", "All"], ...SOCIAL_PLATFORMS.map((p) => [p, label(p)])].map(([value, text]) =>
      h("label", { class: "segmented__option" }, h("input", { type: "radio", name: "platform", value, checked: state.platform === value }), h("span", {}, text)),
    ),
  );
  const type = select("type", [["", "All types"], ...SOCIAL_TYPES.map((t) => [t, label(t)])], state.type, { id: "feed-type" });
  const form = h("form", { class: "filters filters--compact", "aria-label": "Filter the social feed" }, platforms, field("Type", type));
  form.addEventListener("submit", (e) => e.preventDefault());
  form.addEventListener("change", () => {
    state.platform = form.querySelector("input[name=platform]:checked")?.value || "";
    state.type = type.value;
    ctx.setQuery(state);
    reload();
  });

  const list = h("ol", { class: "feed" });
  const body = h("div", {}, loading("Loading the feed…"));
  const more = h("button", { type: "button", class: "btn", hidden: true, onclick: () => loadMore() }, "Older touchpoints");
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  const count = h("p", { class: "count", role: "status", "aria-live": "polite" });
  replace(root, h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Social feed"), count), form, body, h("div", { class: "more" }, more), sentinel);

  function entry(item) {
    const meta = item.metadata || {};
    const text = meta.message || meta.text || meta.note;
    const lead = item.lead || { id: item.lead_id };
    return h(
      "li",
      { class: "feed__item", dataset: { platform: item.platform, type: item.type, id: item.id } },
      h("span", { class: `platform platform--${item.platform}` }, label(item.platform)),
      h(
        "div",
        { class: "feed__body" },
        h("div", {}, h("a", { href: `/app/leads/${encodeURIComponent(item.lead_id)}` }, leadName(lead)), " ", verb(item.type), " ", lead.heat_level && heatBadge(lead.heat_level, lead.heat_score)),
        text && h("blockquote", {}, text),
        h("div", { class: "sub" }, timeAgo(item.occurred_at), ` · ${label(item.type)}`, item.points ? ` · +${fmtScore(item.points)} points` : ""),
      ),
    );
  }

  function render() {
    if (!items.length) replace(body, h("p", { class: "empty" }, state.platform || state.type ? "No social touchpoints match these filters." : "No social touchpoints yet. Connect a platform to see likes, comments and messages here."));
    else {
      replace(list, items.map(entry));
      replace(body, list);
    }
    more.hidden = !nextCursor;
    setText(count, `${items.length}${nextCursor ? "+" : ""} touchpoint${items.length === 1 ? "" : "s"}`);
  }

  async function reload(limit = PAGE) {
    controller?.abort();
    controller = new AbortController();
    try {
      const page = await api(`/v1/feed${qs({ ...state, limit })}`, { signal: controller.signal });
      items = page.items || [];
      nextCursor = page.next_cursor;
      render();
    } catch (error) {
      if (!isAbort(error)) replace(body, failure(error, "The social feed"));
    }
  }

  async function loadMore() {
    if (!nextCursor || loadingMore) return;
    loadingMore = true;
    try {
      const page = await api(`/v1/feed${qs({ ...state, limit: PAGE, cursor: nextCursor })}`, { signal: controller?.signal });
      const known = new Set(items.map((i) => i.id));
      const fresh = (page.items || []).filter((i) => !known.has(i.id));
      items = items.concat(fresh);
      nextCursor = page.next_cursor;
      list.append(...fresh.map(entry));
      more.hidden = !nextCursor;
      setText(count, `${items.length}${nextCursor ? "+" : ""} touchpoints`);
    } catch (error) {
      if (!isAbort(error)) more.after(failure(error, "Older touchpoints"));
    } finally {
      loadingMore = false;
    }
  }

  const observer = new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && loadMore(), { rootMargin: "600px 0px" });
  observer.observe(sentinel);
  reload();

  return {
    refresh: () => keepingFocus(body, "data-id", () => reload(Math.min(200, Math.max(PAGE, items.length)))),
    unmount() {
      observer.disconnect();
      controller?.abort();
    },
  };
}
