// Scoring settings: points per touchpoint type, the WARM and HOT thresholds and decay. While an
// admin edits, a preview (POST /v1/scoring/preview, debounced) shows how a few real leads would
// score; saving (PUT /v1/scoring) queues a full rescore (POST /v1/scoring/recalculate) whose
// progress is polled from GET /v1/scoring/recalculate until it is done.

import { api, isAbort } from "../api.js";
import { announce, debounce, failure, field, fmtNumber, fmtScore, h, heatBadge, leadName, loading, notify, replace, setText, timeAgo } from "../dom.js";
import { INTERACTION_TYPES, label } from "../vocab.js";
import { isAdmin, settingsFrame, showFieldErrors } from "./settings.js";

const PREVIEW_DELAY_MS = 400;
const RESCORE_POLL_MS = 2000;

export function mount(root, ctx) {
  const content = settingsFrame(root, ctx, "scoring", "Scoring", "How many points each touchpoint earns, the scores at which a lead turns WARM and HOT, and whether older touchpoints count for less.");
  const admin = isAdmin();
  const controller = new AbortController();
  let previewController = null;
  let pollTimer = null;
  let form = null;

  replace(content, loading("Loading the scoring settings…"));
  const rescore = rescoreSection();
  api("/v1/scoring", { signal: controller.signal }).then(
    (config) => {
      form = configForm(config);
      replace(content, form, admin && previewSection.el, rescore.el);
      rescore.check();
      if (admin) runPreview();
    },
    (error) => !isAbort(error) && replace(content, failure(error, "The scoring settings")),
  );

  // The form -------------------------------------------------------------------------------------
  function number(name, value, props = {}) {
    return h("input", { type: "number", name, id: `s-${name.replace(/\W/g, "-")}`, value: value ?? "", inputmode: "decimal", disabled: !admin, ...props });
  }

  function configForm(config) {
    const weights = INTERACTION_TYPES.map((type) => field(label(type), number(`weights.${type}`, config.weights?.[type] ?? 0, { step: 1, min: -1000, max: 1000, inputmode: "numeric" })));
    const decayOn = config.decay_half_life_days != null;
    const decayToggle = h("input", { type: "checkbox", name: "decay_on", id: "s-decay-on", checked: decayOn, disabled: !admin });
    const halfLife = number("decay_half_life_days", config.decay_half_life_days ?? 30, { step: "any", min: 0.1, max: 3650, disabled: !admin || !decayOn });
    decayToggle.addEventListener("change", () => (halfLife.disabled = !decayToggle.checked));
    const save = admin && h("button", { type: "submit", class: "btn btn--primary" }, "Save and rescore");
    const el = h(
      "form",
      { class: "card settings-form", "aria-labelledby": "scoring-form-title", novalidate: true },
      h("h2", { id: "scoring-form-title" }, "Scoring rules"),
      h("fieldset", { class: "settings-group" }, h("legend", {}, "Points per touchpoint"), h("div", { class: "weights" }, weights)),
      h(
        "fieldset",
        { class: "settings-group" },
        h("legend", {}, "Heat levels"),
        h("div", { class: "settings-row" }, field("WARM from score", number("thresholds.warm", config.thresholds?.warm, { step: "any", min: 0 })), field("HOT from score", number("thresholds.hot", config.thresholds?.hot, { step: "any", min: 0 }))),
      ),
      h(
        "fieldset",
        { class: "settings-group" },
        h("legend", {}, "Decay"),
        h("div", { class: "settings-row" }, h("label", { class: "check", for: "s-decay-on" }, decayToggle, " Older touchpoints count for less"), field("Half-life in days", halfLife, "After this many days a touchpoint is worth half its points.")),
      ),
      h("p", { class: "field-error", role: "alert", hidden: true, dataset: { summary: "" } }),
      save && h("div", { class: "actions" }, save, h("span", { class: "hint" }, "Saving rescores every lead.")),
    );
    if (admin) {
      const later = debounce(runPreview, PREVIEW_DELAY_MS);
      el.addEventListener("input", later);
      el.addEventListener("change", later);
      el.addEventListener("submit", (event) => {
        event.preventDefault();
        saveConfig(save);
      });
    }
    return el;
  }

  /** The form as a PUT body; unparseable entries are sent as typed so the API names them. */
  function readForm() {
    const value = (name) => form.elements[name].value.trim();
    const asNumber = (text) => (text === "" ? null : Number.isNaN(Number(text)) ? text : Number(text));
    const weights = {};
    for (const type of INTERACTION_TYPES) {
      const text = value(`weights.${type}`);
      if (text !== "") weights[type] = asNumber(text);
    }
    return {
      weights,
      thresholds: { warm: asNumber(value("thresholds.warm")), hot: asNumber(value("thresholds.hot")) },
      decay_half_life_days: form.elements.decay_on.checked ? asNumber(value("decay_half_life_days")) : null,
    };
  }

  function showErrors(error) {
    const leftOver = showFieldErrors(form, error);
    const summary = form.querySelector("[data-summary]");
    summary.hidden = !error;
    setText(summary, error ? `Check the highlighted fields${leftOver.length ? `: ${leftOver.join("; ")}` : "."}` : "");
  }

  // Preview --------------------------------------------------------------------------------------
  const previewStatus = h("p", { class: "hint", role: "status" });
  const previewBody = h("div", { class: "table-wrap" });
  const previewSection = {
    el: h(
      "section",
      { class: "card", "aria-labelledby": "preview-title" },
      h("h2", { id: "preview-title" }, "Preview before saving"),
      h("p", { class: "hint" }, "How the settings above would score your hottest and most recently active leads, next to their heat now."),
      previewStatus,
      previewBody,
    ),
  };

  async function runPreview() {
    if (!form) return;
    previewController?.abort();
    previewController = new AbortController();
    previewBody.setAttribute("aria-busy", "true");
    setText(previewStatus, "Updating the preview…");
    try {
      const answer = await api("/v1/scoring/preview", { method: "POST", body: readForm(), signal: previewController.signal });
      showErrors(null);
      renderPreview(answer.leads || []);
    } catch (error) {
      if (isAbort(error)) return;
      if (error.status === 422) {
        showErrors(error);
        setText(previewStatus, "Fix the highlighted fields to see the preview.");
      } else setText(previewStatus, `The preview could not be computed: ${error.message}`);
      replace(previewBody);
    } finally {
      previewBody.removeAttribute("aria-busy");
    }
  }

  function renderPreview(leads) {
    if (!leads.length) {
      setText(previewStatus, "There are no leads to preview yet.");
      return replace(previewBody);
    }
    const moved = leads.filter((l) => l.level_changed).length;
    setText(previewStatus, `${fmtNumber(leads.length)} leads previewed; ${moved ? `${fmtNumber(moved)} would change level` : "none would change level"}.`);
    replace(
      previewBody,
      h(
        "table",
        { class: "table preview-table" },
        h("caption", { class: "sr-only" }, "Heat now and with the settings above"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Lead"), h("th", { scope: "col" }, "Now"), h("th", { scope: "col" }, "With these settings"), h("th", { scope: "col" }, "Change"))),
        h(
          "tbody",
          {},
          leads.map((lead) =>
            h(
              "tr",
              { dataset: { leadId: lead.id, proposedLevel: lead.proposed.level }, class: lead.level_changed ? "is-changed" : null },
              h("th", { scope: "row" }, h("a", { href: `/app/leads/${encodeURIComponent(lead.id)}` }, leadName(lead)), lead.company && h("div", { class: "sub" }, lead.company)),
              h("td", {}, heatBadge(lead.current.level, lead.current.score)),
              h("td", {}, heatBadge(lead.proposed.level, lead.proposed.score)),
              h("td", {}, change(lead)),
            ),
          ),
        ),
      ),
    );
  }

  function change(lead) {
    const delta = lead.proposed.score - lead.current.score;
    const points = delta === 0 ? "same score" : `${delta > 0 ? "+" : "−"}${fmtScore(Math.abs(delta))} points`;
    return lead.level_changed ? h("strong", {}, `${lead.current.level} → ${lead.proposed.level}`, h("span", { class: "sub" }, ` (${points})`)) : h("span", { class: "muted" }, points);
  }

  // Saving and the rescore -----------------------------------------------------------------------
  async function saveConfig(button) {
    button.disabled = true;
    try {
      await api("/v1/scoring", { method: "PUT", body: readForm() });
    } catch (error) {
      button.disabled = false;
      if (error.status !== 422) return notify(`The scoring settings could not be saved: ${error.message}`, "error");
      showErrors(error);
      return form.querySelector("[aria-invalid='true']")?.focus();
    }
    showErrors(null);
    try {
      // The save flagged every lead; a recalculation run makes the job's progress visible.
      rescore.show(await api("/v1/scoring/recalculate", { method: "POST" }));
      notify("Scoring saved: every lead is being rescored.", "success");
    } catch (error) {
      notify(`Scoring saved; the scoring job rescores every lead on its next run (its progress could not be requested: ${error.message}).`, "info", 10000);
      rescore.check();
    } finally {
      button.disabled = false;
    }
  }

  function rescoreSection() {
    const bar = h("progress", { id: "rescore-progress", max: 1, value: 0, "aria-label": "Rescore progress" });
    const text = h("p", { role: "status", class: "rescore__text" }, "Checking…");
    const el = h("section", { class: "card rescore", "aria-labelledby": "rescore-title", dataset: { status: "unknown" } }, h("h2", { id: "rescore-title" }, "Rescoring"), bar, text);
    let lastStatus = null;

    function show(status) {
      const done = status.leads_done ?? 0;
      const total = status.leads_total ?? 0;
      el.dataset.status = status.status;
      bar.max = Math.max(total, 1);
      bar.value = status.status === "done" ? bar.max : Math.min(done, bar.max);
      const sentence = {
        idle: "No rescore has run yet: every lead is scored as its touchpoints arrive.",
        queued: `Queued: the scoring job starts on the ${fmtNumber(total)} leads within 15 minutes.`,
        running: `Rescoring: ${fmtNumber(done)} of ${fmtNumber(total)} leads done.`,
        done: `Done: ${fmtNumber(total)} leads rescored with the saved settings`,
      }[status.status] || status.status;
      replace(text, sentence, status.status === "done" && status.finished_at ? [", ", timeAgo(status.finished_at), "."] : null);
      if (lastStatus && lastStatus !== "done" && status.status === "done") {
        announce("Rescoring is done.");
        if (admin) runPreview();
      }
      lastStatus = status.status;
      clearTimeout(pollTimer);
      if (status.status === "queued" || status.status === "running") pollTimer = setTimeout(check, RESCORE_POLL_MS);
    }

    async function check() {
      try {
        show(await api("/v1/scoring/recalculate", { signal: controller.signal }));
      } catch (error) {
        if (isAbort(error)) return;
        setText(text, `The rescore status could not be read: ${error.message}`);
        pollTimer = setTimeout(check, RESCORE_POLL_MS * 5);
      }
    }
    return { el, show, check };
  }

  return {
    // Touchpoints or a rescore changed scores: the preview's "now" column follows.
    refresh: () => admin && form && runPreview(),
    unmount() {
      controller.abort();
      previewController?.abort();
      clearTimeout(pollTimer);
    },
  };
}
