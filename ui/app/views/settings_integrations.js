// Settings › Integrations (admins): connect Facebook, Instagram and LinkedIn with the platform's
// login, pick the accounts the login listed (?platform=&pending=<id> after the callback), and see
// each platform's status: accounts, processed / pending / dead events with replay, throttling,
// the last error, and disconnect. docs/connect.md.

import { api } from "../api.js";
import { claims } from "../auth.js";
import { failure, fmtDate, h, loading, notify, replace } from "../dom.js";
import { label } from "../vocab.js";

const PLATFORMS = ["facebook", "instagram", "linkedin"];
const STATUS_TEXT = { connected: "Connected", needs_token: "Needs a new login", disconnected: "Disconnected", not_connected: "Not connected" };
const ACCOUNT_LABELS = { page_ids: "Pages", account_ids: "Instagram accounts", organization_ids: "Organisations", sponsored_account_ids: "Ad accounts" };
// What the callback's `error=` means, in words.
const CALLBACK_ERRORS = {
  access_denied: "The login was cancelled, so nothing was connected.",
  exchange_refused: "The platform refused the login code; try connecting again.",
  platform_unavailable: "The platform could not be reached; try again in a moment.",
};

export function mount(root, ctx) {
  ctx.setTitle("Integrations");
  const heading = h("h1", { tabindex: "-1" }, "Integrations");
  if (claims()?.role !== "admin") {
    replace(root, h("div", { class: "page-head" }, heading), h("p", { class: "empty" }, "Only admins manage integrations."));
    return {};
  }
  const platform = ctx.query.get("platform");
  const pending = ctx.query.get("pending");
  const error = ctx.query.get("error");
  const picker = h("div", {});
  const body = h("div", {}, loading("Loading the integrations…"));
  replace(
    root,
    h("div", { class: "page-head" }, heading),
    h("p", { class: "muted" }, "Connect an account with the platform's own login, then pick which of your pages or accounts Leadheat follows."),
    error && h("p", { class: "message message--error", role: "alert" }, `${label(platform || "")}: ${CALLBACK_ERRORS[error] || `the platform answered “${error}”.`}`),
    picker,
    body,
  );

  async function load() {
    try {
      const { items } = await api("/v1/integrations");
      replace(body, h("div", { class: "grid" }, PLATFORMS.map((p) => card(items.find((i) => i.platform === p) || { platform: p, status: "not_connected" }))));
    } catch (e) {
      replace(body, failure(e, "the integrations"));
    }
  }

  function card(item) {
    const name = label(item.platform);
    const accounts = Object.entries(item.accounts || {}).filter(([, ids]) => ids.length);
    const throttle = item.throttle || {};
    const connected = item.connected;
    return h(
      "section",
      { class: "card", dataset: { integration: item.platform, status: item.status } },
      h("h2", {}, h("span", { class: `platform platform--${item.platform}` }, name)),
      h("p", { "data-status": "" }, STATUS_TEXT[item.status] || item.status),
      accounts.length > 0 &&
        h("dl", { class: "props" }, accounts.map(([field, ids]) => [h("dt", {}, ACCOUNT_LABELS[field] || field), h("dd", {}, ids.join(", "))])),
      item.status !== "not_connected" &&
        h(
          "dl",
          { class: "props" },
          h("dt", {}, "Processed"),
          h("dd", {}, String(item.processed ?? 0)),
          h("dt", {}, "Waiting"),
          h("dd", {}, String(item.pending ?? 0)),
          h("dt", {}, "Failed for good"),
          h("dd", { "data-dead": "" }, String(item.dead ?? 0)),
          item.last_event_at && [h("dt", {}, "Last event"), h("dd", {}, fmtDate(item.last_event_at))],
          throttle.blocked_until && [h("dt", {}, "Throttled until"), h("dd", {}, fmtDate(throttle.blocked_until))],
          throttle.circuit_open_until && [h("dt", {}, "Paused after failures until"), h("dd", {}, fmtDate(throttle.circuit_open_until))],
          item.last_error && [h("dt", {}, "Last error"), h("dd", {}, item.last_error)],
        ),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: connected ? "btn" : "btn btn--primary", onclick: (e) => connect(item.platform, e.currentTarget) }, connected ? `Reconnect ${name}` : `Connect ${name}`),
        item.dead > 0 && h("button", { type: "button", class: "btn", onclick: (e) => replay(item.platform, e.currentTarget) }, `Replay ${item.dead} failed event${item.dead === 1 ? "" : "s"}`),
        connected && h("button", { type: "button", class: "btn btn--quiet", onclick: (e) => disconnect(item.platform, e.currentTarget) }, `Disconnect ${name}`),
      ),
    );
  }

  async function connect(p, button) {
    button.disabled = true;
    try {
      const { authorize_url: url } = await api(`/v1/integrations/${p}/connect`, { method: "POST" });
      location.assign(url);
    } catch (e) {
      button.disabled = false;
      notify(e.message, "error");
    }
  }

  async function replay(p, button) {
    button.disabled = true;
    try {
      const result = await api(`/v1/integrations/${p}/replay`, { method: "POST" });
      notify(`${result.replayed} ${label(p)} event${result.replayed === 1 ? "" : "s"} sent again.`, "success");
      await load();
    } catch (e) {
      button.disabled = false;
      notify(e.message, "error");
    }
  }

  async function disconnect(p, button) {
    if (!confirm(`Disconnect ${label(p)}? Its events will be ignored until it is connected again.`)) return;
    button.disabled = true;
    try {
      await api(`/v1/integrations/${p}`, { method: "DELETE" });
      notify(`${label(p)} disconnected.`, "success");
      await load();
    } catch (e) {
      button.disabled = false;
      notify(e.message, "error");
    }
  }

  async function showPicker() {
    replace(picker, loading("Loading the accounts your login listed…"));
    try {
      const listed = await api(`/v1/integrations/${platform}/pending/${encodeURIComponent(pending)}`);
      replace(picker, pickForm(listed));
    } catch (e) {
      replace(picker, h("p", { class: "message message--error", role: "alert" }, e.status === 410 ? "Those accounts were listed too long ago; connect again." : e.message));
    }
  }

  function pickForm(listed) {
    const name = label(listed.platform);
    const boxes = listed.candidates.map((c) =>
      h("label", { class: "segmented__option" }, h("input", { type: "checkbox", name: c.field, value: c.id }), h("span", {}, c.name ? `${c.name} (${c.id})` : c.id)),
    );
    const form = h(
      "form",
      { class: "card", "aria-labelledby": "pick-title" },
      h("h2", { id: "pick-title" }, `Choose the ${name} accounts to connect`),
      listed.candidates.length === 0
        ? h("p", {}, "Your login administers no account Leadheat can connect here.")
        : h("fieldset", {}, h("legend", {}, "Accounts your login administers"), boxes),
      h("div", { class: "actions" }, listed.candidates.length > 0 && h("button", { type: "submit", class: "btn btn--primary" }, "Connect selected"), h("a", { class: "btn btn--quiet", href: "/app/settings/integrations" }, "Cancel")),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const pick = {};
      for (const box of form.querySelectorAll("input[type=checkbox]:checked")) (pick[box.name] ||= []).push(box.value);
      if (Object.keys(pick).length === 0) {
        notify("Pick at least one account.", "error");
        return;
      }
      const submit = form.querySelector("button[type=submit]");
      submit.disabled = true;
      try {
        await api(`/v1/integrations/${listed.platform}/pending/${encodeURIComponent(listed.id)}`, { method: "POST", body: pick });
        notify(`${name} connected.`, "success");
        ctx.navigate("/app/settings/integrations", { replace: true });
      } catch (e) {
        submit.disabled = false;
        notify(e.message, "error");
      }
    });
    return form;
  }

  if (platform && pending) showPicker();
  load();
  return { refresh: load };
}
