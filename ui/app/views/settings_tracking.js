// The website tracking snippet: the org's site key (GET /v1/tracking) inside a ready-to-paste
// script that posts page views to POST /track/<site_key> and offers `leadheat.track(...)` for the
// site's forms. A copy button (Clipboard API, with a select-and-copy fallback); admins can rotate
// the key (POST /v1/tracking/rotate) after a confirmation, since the old key stops working at once.

import { api, isAbort } from "../api.js";
import { announce, failure, field, h, loading, notify, replace, setText } from "../dom.js";
import { isAdmin, settingsFrame } from "./settings.js";

/** The script a website pastes before `</body>`; `endpoint` is the org's /track/<site_key> URL. */
export function snippet(endpoint) {
  return `<script>
/* Leadheat website tracking */
(function () {
  var endpoint = ${JSON.stringify(endpoint)};
  var storageKey = "leadheat_visitor";
  var visitor;
  try { visitor = localStorage.getItem(storageKey); } catch (e) {}
  if (!visitor) {
    visitor = "v-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
    try { localStorage.setItem(storageKey, visitor); } catch (e) {}
  }
  function track(event) {
    event.visitor_id = visitor;
    if (!event.url) event.url = location.href;
    var body = JSON.stringify(event);
    /* As text/plain: no CORS preflight, and a beacon survives leaving the page. */
    if (navigator.sendBeacon && navigator.sendBeacon(endpoint, body)) return;
    fetch(endpoint, { method: "POST", mode: "cors", keepalive: true, headers: { "Content-Type": "text/plain" }, body: body }).catch(function () {});
  }
  window.leadheat = { track: track };
  track({ type: "page_view" });
})();
</script>
<!-- When a visitor sends a form, name them (an email or a phone is required):
  leadheat.track({ type: "info_request", identity: { email: "ada@example.com", first_name: "Ada" } });
  leadheat.track({ type: "price_quote", identity: { email: "ada@example.com", company: "Example Ltd" } });
-->`;
}

export function mount(root, ctx) {
  const content = settingsFrame(root, ctx, "tracking", "Tracking snippet", "Paste this snippet into every page of your website, before </body>. Page views of known visitors become website-visit touchpoints; the forms you wire to it become info requests and price quotes.");
  const admin = isAdmin();
  const controller = new AbortController();
  const code = h("textarea", { id: "tracking-snippet", class: "snippet", readonly: true, rows: 28, spellcheck: "false" });
  const keyText = h("code", { id: "site-key" });
  const copyStatus = h("span", { class: "hint", role: "status" });
  const copy = h("button", { type: "button", class: "btn btn--primary", id: "copy-snippet" }, "Copy snippet");
  const rotate = admin ? h("button", { type: "button", class: "btn btn--danger", id: "rotate-key" }, "Rotate site key") : null;
  replace(content, loading("Loading the tracking settings…"));

  api("/v1/tracking", { signal: controller.signal }).then(
    (settings) => {
      show(settings);
      replace(
        content,
        h(
          "section",
          { class: "card", "aria-labelledby": "snippet-title" },
          h("h2", { id: "snippet-title" }, "Snippet"),
          h("p", {}, "Site key: ", keyText),
          field("Tracking snippet", code),
          h("div", { class: "actions" }, copy, copyStatus),
        ),
        h(
          "section",
          { class: "card", "aria-labelledby": "rotate-title" },
          h("h2", { id: "rotate-title" }, "Site key"),
          h("p", {}, "The site key is public: it is in your pages' source. Rotate it if it is being misused. The old key stops working at once, so paste the new snippet into your website right after."),
          admin ? h("div", { class: "actions" }, rotate) : h("p", { class: "muted" }, "Only admins can rotate the site key."),
        ),
      );
    },
    (error) => !isAbort(error) && replace(content, failure(error, "The tracking settings")),
  );

  function show(settings) {
    setText(keyText, settings.site_key);
    code.value = snippet(settings.snippet_url_example);
  }

  copy.addEventListener("click", async () => {
    let copied = false;
    try {
      await navigator.clipboard.writeText(code.value);
      copied = true;
    } catch {
      // No Clipboard API here (an insecure origin, or permission refused): copy the selection.
      code.focus();
      code.select();
      try {
        copied = document.execCommand("copy");
      } catch {
        copied = false;
      }
    }
    setText(copyStatus, copied ? "Copied to the clipboard." : "Press Ctrl+C (⌘C on a Mac) to copy the selected snippet.");
    if (!copied) {
      code.focus();
      code.select();
    }
  });

  rotate?.addEventListener("click", async () => {
    if (!confirm("Rotate the site key? The old key stops working at once: your website's events are refused until you paste the new snippet.")) return;
    rotate.disabled = true;
    try {
      show(await api("/v1/tracking/rotate", { method: "POST" }));
      setText(copyStatus, "");
      notify("New site key in place: the old one no longer works. Paste the new snippet into your website.", "success", 10000);
      announce("The site key was rotated.");
    } catch (error) {
      notify(`The site key could not be rotated: ${error.message}`, "error");
    } finally {
      rotate.disabled = false;
    }
  });

  return {
    unmount() {
      controller.abort();
    },
  };
}
