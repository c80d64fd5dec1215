// Modal dialogs and the lead form shared by "New lead" and "Edit lead": its fields, reading them
// into an API body, and showing a problem+json answer's field errors next to their fields.

import { field, h, replace, select } from "./dom.js";
import { ownerOptions } from "./members.js";
import { SOURCES, label } from "./vocab.js";

let dialogCount = 0;

/**
 * A modal dialog on the native <dialog>: the page behind is inert, focus stays inside, Escape
 * closes it, and focus goes back to what opened it. `content` is the body; returns
 * `{dialog, body, close, setContent}`.
 */
export function openDialog({ title, content, wide = false, onClose }) {
  const opener = document.activeElement;
  const titleId = `dialog-title-${++dialogCount}`;
  const body = h("div", { class: "dialog__body" }, content);
  const closeButton = h("button", { type: "button", class: "btn btn--quiet dialog__close", "aria-label": "Close" }, "×");
  const dialog = h("dialog", { class: `dialog${wide ? " dialog--wide" : ""}`, "aria-labelledby": titleId }, h("div", { class: "dialog__head" }, h("h2", { id: titleId }, title), closeButton), body);
  closeButton.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    dialog.remove();
    onClose?.();
    if (opener?.isConnected) opener.focus({ preventScroll: true });
  });
  document.body.append(dialog);
  dialog.showModal();
  focusFirst(body);
  return { dialog, body, close: () => dialog.close(), setContent: (...children) => (replace(body, ...children), focusFirst(body)) };
}

function focusFirst(container) {
  (container.querySelector("[autofocus]") || container.querySelector("input:not([type=hidden]), select, textarea, button"))?.focus();
}

// ------------------------------------------------------------------------------------------------
// Field errors

/** Removes the errors `showErrors` put in `form`. */
export function clearErrors(form, summary) {
  for (const el of form.querySelectorAll(".field-error[data-for]")) el.remove();
  for (const el of form.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    el.removeAttribute("aria-describedby");
  }
  if (summary) {
    summary.textContent = "";
    summary.hidden = true;
  }
}

/**
 * Shows an ApiError: each field error under the control of that name (`tags[2]` goes to `tags`),
 * marked aria-invalid and described by its message; the rest, and a summary, in `summary`. The
 * focus moves to the first invalid control.
 */
export function showErrors(form, error, summary) {
  clearErrors(form, summary);
  const errors = error?.problem?.errors || [];
  const elsewhere = [];
  let first = null;
  for (const e of errors) {
    const name = String(e.field).split(/[.[]/)[0];
    const control = form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (!control) {
      elsewhere.push(`${e.field}: ${e.message}`);
      continue;
    }
    const id = `${control.id}-error`;
    const existing = form.querySelector(`#${CSS.escape(id)}`);
    if (existing) existing.append(`; ${e.message}`);
    else control.closest(".field").append(h("p", { class: "field-error", id, "data-for": name }, e.message));
    control.setAttribute("aria-invalid", "true");
    control.setAttribute("aria-describedby", id);
    first ||= control;
  }
  if (summary) {
    summary.textContent = errors.length ? ["Please correct the marked fields.", ...elsewhere].join(" ") : error?.message || String(error);
    summary.hidden = false;
  }
  (first || summary)?.focus?.();
}

// ------------------------------------------------------------------------------------------------
// The lead form

/** The editable lead fields: [name, label, input type]. */
export const LEAD_FIELDS = [
  ["first_name", "First name", "text"],
  ["last_name", "Last name", "text"],
  ["email", "Email", "email"],
  ["phone", "Phone", "tel"],
  ["company", "Company", "text"],
  ["title", "Job title", "text"],
];

/** What a field holds as the form shows it (tags as "a, b"; nothing as ""). */
export function formValue(lead, name) {
  const value = lead?.[name];
  if (name === "tags") return (value || []).join(", ");
  return value ?? "";
}

/** The controls of the lead form, filled from `lead` (ids prefixed with `prefix`). */
export function leadFields(lead, members, prefix) {
  const id = (name) => `${prefix}-${name}`;
  const inputs = LEAD_FIELDS.map(([name, text, type]) => field(text, h("input", { type, name, id: id(name), value: formValue(lead, name), autocomplete: "off", maxlength: name === "email" ? "254" : "200" })));
  const source = select("source", SOURCES.map((s) => [s, label(s)]), lead?.source || "direct", { id: id("source") });
  const owner = select("owner_id", ownerOptions(members, lead?.owner_id), lead?.owner_id || "", { id: id("owner_id") });
  const tags = h("input", { type: "text", name: "tags", id: id("tags"), value: formValue(lead, "tags"), autocomplete: "off" });
  return h("div", { class: "grid2" }, inputs, field("Source", source), field("Owner", owner), field("Tags", tags, "Separate tags with commas."));
}

/** The form's values as the API writes them: trimmed text or null, tags as a list. */
export function readLeadForm(form) {
  const value = (name) => form.querySelector(`[name="${name}"]`).value.trim();
  const body = {};
  for (const [name] of LEAD_FIELDS) body[name] = value(name) || null;
  body.source = value("source");
  body.owner_id = value("owner_id") || null;
  body.tags = value("tags")
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
  return body;
}

/** The fields of `body` that differ from `lead` (a merge patch: only what changed). */
export function changedFields(lead, body) {
  const changed = {};
  for (const [name, value] of Object.entries(body)) {
    const before = name === "tags" ? lead.tags || [] : lead[name] ?? null;
    if (JSON.stringify(before) !== JSON.stringify(value)) changed[name] = value;
  }
  return changed;
}
