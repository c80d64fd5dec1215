// What the settings pages share: the page frame with its sub-navigation, who may change settings,
// and problem+json field errors shown next to the controls they name.

import { claims } from "../auth.js";
import { h, replace } from "../dom.js";

/** The settings sub-navigation, in order: [path segment under /app/settings/, link text]. */
export const SETTINGS_PAGES = [
  ["scoring", "Scoring"],
  ["fields", "Custom fields"],
  ["stages", "Stages"],
  ["tracking", "Tracking snippet"],
];

/** Only admins change settings; the API enforces it, the pages only spare others the forms. */
export const isAdmin = () => claims()?.role === "admin";

/**
 * Renders a settings page's frame into `root`: the title, the sub-navigation with `current`
 * marked, an intro, and for non-admins a note that the page is read-only. Returns the element the
 * page's content goes into.
 */
export function settingsFrame(root, ctx, current, title, intro) {
  ctx.setTitle(`${title} · Settings`);
  const content = h("div", { class: "settings__content" });
  replace(
    root,
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Settings: ", title)),
    h(
      "nav",
      { class: "subnav", "aria-label": "Settings" },
      h(
        "ul",
        {},
        SETTINGS_PAGES.map(([key, text]) => h("li", {}, h("a", { href: `/app/settings/${key}`, "aria-current": key === current ? "page" : null }, text))),
      ),
    ),
    intro && h("p", { class: "hint settings__intro" }, intro),
    !isAdmin() && h("p", { class: "note", role: "note" }, "Only admins can change these settings; you see them read-only."),
    content,
  );
  return content;
}

/**
 * Shows the field errors of a problem+json answer next to the controls of `form` they name
 * (`errors[].field`: a control's `name`, or its prefix before `[` or `.` for list items) and
 * returns the messages no control took. Call with `null` to clear them.
 */
export function showFieldErrors(form, error) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll(".field-error[data-for]")) el.remove();
  const leftOver = [];
  for (const { field, message } of error?.problem?.errors || []) {
    const control = controlFor(form, field);
    if (!control) {
      leftOver.push(`${field}: ${message}`);
      continue;
    }
    const id = `${control.id}-error`;
    control.setAttribute("aria-invalid", "true");
    const describedBy = (control.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && x !== id);
    control.setAttribute("aria-describedby", [...describedBy, id].join(" "));
    const note = h("p", { class: "field-error", id, dataset: { for: control.name } }, message);
    (control.closest(".field") || control.parentElement).append(note);
  }
  return leftOver;
}

function controlFor(form, field) {
  const named = (name) => [...form.elements].find((el) => el.name === name);
  return named(field) || named(field.split("[")[0]) || named(field.split(".")[0]);
}
