// Custom field settings: the org's field definitions (GET /v1/custom-fields); admins add one
// (POST), change its label, options and whether it is required (PATCH), or delete it (DELETE,
// after a confirmation: its values go from every lead).

import { api, isAbort } from "../api.js";
import { announce, failure, field, h, loading, notify, replace, select } from "../dom.js";
import { isAdmin, settingsFrame, showFieldErrors } from "./settings.js";

const TYPES = [
  ["text", "Text"],
  ["number", "Number"],
  ["date", "Date"],
  ["boolean", "Yes / no"],
  ["select", "One of a list"],
  ["multiselect", "Several of a list"],
  ["url", "Web address"],
  ["email", "Email address"],
];
const typeName = (type) => TYPES.find(([value]) => value === type)?.[1] || type;
const hasOptions = (type) => type === "select" || type === "multiselect";
const optionLines = (text) => text.split("\n").map((line) => line.trim()).filter(Boolean);

export function mount(root, ctx) {
  const content = settingsFrame(root, ctx, "fields", "Custom fields", "Extra fields every lead can carry, such as an industry or a budget. They appear on each lead's page.");
  const admin = isAdmin();
  const controller = new AbortController();
  const list = h("div", { class: "table-wrap" }, loading("Loading the custom fields…"));
  const editor = h("div");
  let fields = [];
  replace(content, editor, h("section", { class: "card", "aria-labelledby": "fields-title" }, h("h2", { id: "fields-title" }, "Fields"), list), admin && createForm());
  load();

  async function load() {
    try {
      fields = (await api("/v1/custom-fields", { signal: controller.signal })).items || [];
      render();
    } catch (error) {
      if (!isAbort(error)) replace(list, failure(error, "The custom fields"));
    }
  }

  function render() {
    if (!fields.length) return replace(list, h("p", { class: "muted" }, "No custom fields yet."));
    replace(
      list,
      h(
        "table",
        { class: "table fields-table" },
        h("caption", { class: "sr-only" }, "Custom fields"),
        h("thead", {}, h("tr", {}, ["Label", "Key", "Type", "Options", "Required"].map((t) => h("th", { scope: "col" }, t)), admin && h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Actions")))),
        h(
          "tbody",
          {},
          fields.map((f) =>
            h(
              "tr",
              { dataset: { fieldKey: f.key } },
              h("th", { scope: "row" }, f.label),
              h("td", {}, h("code", {}, f.key)),
              h("td", {}, typeName(f.type)),
              h("td", {}, (f.options || []).length ? f.options.join(", ") : h("span", { class: "muted" }, "—")),
              h("td", {}, f.required ? "Yes" : "No"),
              admin &&
                h(
                  "td",
                  { class: "row-actions" },
                  h("button", { type: "button", class: "btn btn--small", "aria-label": `Edit ${f.label}`, onclick: () => edit(f) }, "Edit"),
                  h("button", { type: "button", class: "btn btn--small btn--danger", "aria-label": `Delete ${f.label}`, onclick: () => remove(f) }, "Delete"),
                ),
            ),
          ),
        ),
      ),
    );
  }

  // Create ---------------------------------------------------------------------------------------
  function createForm() {
    const type = select("type", TYPES, "text", { id: "cf-type" });
    const options = h("textarea", { name: "options", id: "cf-options", rows: 3 });
    const optionsField = field("Options, one per line", options, "For the list types.");
    const syncOptions = () => (optionsField.hidden = !hasOptions(type.value));
    type.addEventListener("change", syncOptions);
    syncOptions();
    const form = h(
      "form",
      { class: "card settings-form", "aria-labelledby": "cf-create-title", novalidate: true },
      h("h2", { id: "cf-create-title" }, "Add a field"),
      h(
        "div",
        { class: "settings-row" },
        field("Label", h("input", { name: "label", id: "cf-label", required: true, maxlength: 100, autocomplete: "off" })),
        field("Key", h("input", { name: "key", id: "cf-key", required: true, maxlength: 50, autocomplete: "off", pattern: "[a-z][a-z0-9_]*" }), "Lower case letters, digits and _; used by the API."),
        field("Type", type),
      ),
      optionsField,
      h("label", { class: "check", for: "cf-required" }, h("input", { type: "checkbox", name: "required", id: "cf-required" }), " Required on every lead"),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn--primary" }, "Add field")),
    );
    // Suggest a key from the label until the key is typed in.
    form.elements.label.addEventListener("input", () => {
      const key = form.elements.key;
      if (key.dataset.typed) return;
      key.value = form.elements.label.value.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "_").replace(/^_+|_+$/g, "").replace(/^(\d)/, "f_$1").slice(0, 50);
    });
    form.elements.key.addEventListener("input", () => (form.elements.key.dataset.typed = "1"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { key: form.elements.key.value.trim(), label: form.elements.label.value.trim(), type: type.value, required: form.elements.required.checked };
      if (hasOptions(type.value)) body.options = optionLines(options.value);
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const created = await api("/v1/custom-fields", { method: "POST", body });
        showFieldErrors(form, null);
        form.reset();
        delete form.elements.key.dataset.typed;
        syncOptions();
        fields.push(created);
        render();
        announce(`Field ${created.label} added.`);
        notify(`Field “${created.label}” added.`, "success");
      } catch (error) {
        failed(form, error, "The field could not be added");
      } finally {
        button.disabled = false;
      }
    });
    return form;
  }

  // Edit -----------------------------------------------------------------------------------------
  function edit(f) {
    const options = h("textarea", { name: "options", id: "cf-edit-options", rows: 3 }, (f.options || []).join("\n"));
    const form = h(
      "form",
      { class: "card settings-form", "aria-labelledby": "cf-edit-title", novalidate: true, dataset: { editing: f.key } },
      h("h2", { id: "cf-edit-title", tabindex: "-1" }, `Edit “${f.label}”`),
      h("p", { class: "hint" }, "The key and the type stay as they are: lead values are stored under them."),
      field("Label", h("input", { name: "label", id: "cf-edit-label", value: f.label, maxlength: 100, autocomplete: "off" })),
      hasOptions(f.type) && field("Options, one per line", options),
      h("label", { class: "check", for: "cf-edit-required" }, h("input", { type: "checkbox", name: "required", id: "cf-edit-required", checked: !!f.required }), " Required on every lead"),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn--primary" }, "Save field"), h("button", { type: "button", class: "btn", onclick: close }, "Cancel")),
    );
    function close() {
      replace(editor);
      list.querySelector(`tr[data-field-key="${CSS.escape(f.key)}"] button`)?.focus();
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { label: form.elements.label.value.trim(), required: form.elements.required.checked };
      if (hasOptions(f.type)) body.options = optionLines(options.value);
      try {
        const updated = await api(`/v1/custom-fields/${encodeURIComponent(f.id)}`, { method: "PATCH", body });
        fields = fields.map((x) => (x.id === f.id ? updated : x));
        render();
        close();
        notify(`Field “${updated.label}” saved.`, "success");
      } catch (error) {
        failed(form, error, "The field could not be saved");
      }
    });
    replace(editor, form);
    form.querySelector("h2").focus();
  }

  async function remove(f) {
    if (!confirm(`Delete the field “${f.label}”? Its values are removed from every lead. This cannot be undone.`)) return;
    try {
      await api(`/v1/custom-fields/${encodeURIComponent(f.id)}`, { method: "DELETE" });
      fields = fields.filter((x) => x.id !== f.id);
      if (editor.querySelector(`[data-editing="${CSS.escape(f.key)}"]`)) replace(editor);
      render();
      announce(`Field ${f.label} deleted.`);
      notify(`Field “${f.label}” deleted.`, "success");
    } catch (error) {
      notify(`The field could not be deleted: ${error.message}`, "error");
    }
  }

  function failed(form, error, what) {
    const leftOver = showFieldErrors(form, error);
    if (error.status === 422 && !leftOver.length) form.querySelector("[aria-invalid='true']")?.focus();
    else notify(`${what}: ${error.message}`, "error");
  }

  return {
    refresh: load,
    unmount() {
      controller.abort();
    },
  };
}
