// Pipeline stage settings: the org's stages in board order (GET /v1/pipeline/stages). Admins add
// (POST), rename (PATCH) and delete (DELETE; only an empty stage, and not the last one) stages,
// and reorder them by dragging or from the keyboard (focus a stage, Alt + ↑/↓, as on the board).
// A new order shows at once, is saved with PUT /v1/pipeline/stages/order, and is rolled back with
// a visible message when the server refuses it.

import { api, isAbort } from "../api.js";
import { announce, failure, field, fmtNumber, h, loading, notify, replace } from "../dom.js";
import { isAdmin, settingsFrame, showFieldErrors } from "./settings.js";

export function mount(root, ctx) {
  const content = settingsFrame(root, ctx, "stages", "Stages", "The columns of the pipeline board, in order. A stage can be deleted once it holds no leads.");
  const admin = isAdmin();
  const controller = new AbortController();
  let stages = [];
  let saving = 0;
  let dragging = null;

  const listEl = h("ol", { class: "stage-list", "aria-label": "Stages in board order", "aria-describedby": admin ? "stages-help" : null });
  const body = h("div", {}, loading("Loading the stages…"));
  replace(
    content,
    h(
      "section",
      { class: "card", "aria-labelledby": "stages-title" },
      h("h2", { id: "stages-title" }, "Stages"),
      admin && h("p", { id: "stages-help", class: "hint" }, "Drag a stage to reorder it, or focus it and press Alt + ↑/↓; ↑/↓ alone move between stages."),
      body,
    ),
    admin && createForm(),
  );
  load();

  async function load() {
    try {
      stages = (await api("/v1/pipeline/stages", { signal: controller.signal })).items || [];
      render();
    } catch (error) {
      if (!isAbort(error)) replace(body, failure(error, "The stages"));
    }
  }

  const itemOf = (id) => listEl.querySelector(`li[data-stage-id="${CSS.escape(id)}"]`);
  const items = () => [...listEl.querySelectorAll("li.stage-item")];

  function render() {
    const focused = document.activeElement?.closest?.("li.stage-item")?.dataset.stageId;
    replace(listEl, stages.map(item));
    replace(body, stages.length ? listEl : h("p", { class: "muted" }, "No stages."));
    if (focused) itemOf(focused)?.focus({ preventScroll: true });
  }

  function item(stage) {
    const count = `${fmtNumber(stage.lead_count)} ${stage.lead_count === 1 ? "lead" : "leads"}`;
    return h(
      "li",
      { class: "stage-item", dataset: { stageId: stage.id, name: stage.name }, tabindex: admin ? "0" : null, draggable: admin ? "true" : null, "aria-label": `${stage.name}, ${count}` },
      admin && h("span", { class: "stage-item__grip", "aria-hidden": "true" }, "⋮⋮"),
      h("span", { class: "stage-item__name" }, stage.name),
      stage.is_won ? h("span", { class: "pill pill--won" }, "won") : stage.is_closed ? h("span", { class: "pill" }, "closed") : null,
      h("span", { class: "stage-item__count sub" }, count),
      admin &&
        h(
          "span",
          { class: "row-actions" },
          h("button", { type: "button", class: "btn btn--small", tabindex: "-1", dataset: { move: "up" }, "aria-label": `Move ${stage.name} up` }, "▲"),
          h("button", { type: "button", class: "btn btn--small", tabindex: "-1", dataset: { move: "down" }, "aria-label": `Move ${stage.name} down` }, "▼"),
          h("button", { type: "button", class: "btn btn--small", dataset: { action: "rename" }, "aria-label": `Rename ${stage.name}` }, "Rename"),
          h("button", { type: "button", class: "btn btn--small btn--danger", dataset: { action: "delete" }, "aria-label": `Delete ${stage.name}` }, "Delete"),
        ),
    );
  }

  // Reordering -----------------------------------------------------------------------------------
  /** Moves stage `id` to `index`, shows it at once and saves the whole order. */
  async function moveTo(id, index) {
    const from = stages.findIndex((s) => s.id === id);
    if (from < 0 || index < 0 || index >= stages.length || index === from) return;
    const before = stages;
    const next = [...stages];
    const [moved] = next.splice(from, 1);
    next.splice(index, 0, moved);
    stages = next;
    render();
    saving++;
    listEl.setAttribute("aria-busy", "true");
    try {
      stages = (await api("/v1/pipeline/stages/order", { method: "PUT", body: { stage_ids: next.map((s) => s.id) } })).items || next;
      render();
      announce(`${moved.name} moved to position ${stages.findIndex((s) => s.id === id) + 1} of ${stages.length}.`);
    } catch (error) {
      stages = before;
      render();
      notify(`${moved.name} could not be moved: ${error.message} The previous order was put back.`, "error");
    } finally {
      if (!--saving) listEl.removeAttribute("aria-busy");
    }
  }

  function step(el, dir) {
    const index = stages.findIndex((s) => s.id === el.dataset.stageId);
    const target = index + (dir === "up" ? -1 : 1);
    if (target < 0 || target >= stages.length) return announce(`${el.dataset.name} is already ${dir === "up" ? "first" : "last"}.`);
    return moveTo(el.dataset.stageId, target);
  }

  if (admin) {
    listEl.addEventListener("keydown", (event) => {
      const el = event.target.closest?.("li.stage-item");
      const dir = { ArrowUp: "up", ArrowDown: "down" }[event.key];
      if (!el || !dir || event.ctrlKey || event.metaKey || event.shiftKey) return;
      if (event.altKey) {
        event.preventDefault();
        step(el, dir);
      } else if (event.target === el) {
        event.preventDefault();
        (dir === "up" ? el.previousElementSibling : el.nextElementSibling)?.focus();
      }
    });
    listEl.addEventListener("click", (event) => {
      const button = event.target.closest?.("button");
      const el = button?.closest("li.stage-item");
      if (!el) return;
      const stage = stages.find((s) => s.id === el.dataset.stageId);
      if (button.dataset.move) step(el, button.dataset.move);
      else if (button.dataset.action === "rename") rename(el, stage);
      else if (button.dataset.action === "delete") remove(stage);
    });

    // Native drag-and-drop: the drop position is the first stage whose middle is below the pointer.
    const dropIndex = (y) => {
      const others = items().filter((el) => el !== dragging);
      const index = others.findIndex((el) => {
        const r = el.getBoundingClientRect();
        return y < r.top + r.height / 2;
      });
      return index === -1 ? others.length : index;
    };
    listEl.addEventListener("dragstart", (event) => {
      dragging = event.target.closest?.("li.stage-item");
      if (!dragging) return;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", dragging.dataset.stageId);
      dragging.classList.add("is-dragging");
    });
    listEl.addEventListener("dragover", (event) => {
      if (!dragging) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
    });
    listEl.addEventListener("drop", (event) => {
      if (!dragging) return;
      event.preventDefault();
      const id = dragging.dataset.stageId;
      const index = dropIndex(event.clientY);
      dragging.classList.remove("is-dragging");
      dragging = null;
      moveTo(id, index);
    });
    listEl.addEventListener("dragend", () => {
      dragging?.classList.remove("is-dragging");
      dragging = null;
    });
  }

  // Rename, delete, create -----------------------------------------------------------------------
  function rename(el, stage) {
    const input = h("input", { name: "name", id: `rename-${stage.id}`, value: stage.name, maxlength: 80, autocomplete: "off" });
    const form = h(
      "form",
      { class: "stage-rename", novalidate: true },
      field(`New name for ${stage.name}`, input),
      h("button", { type: "submit", class: "btn btn--small btn--primary" }, "Save"),
      h("button", { type: "button", class: "btn btn--small", onclick: () => render() }, "Cancel"),
    );
    form.addEventListener("keydown", (event) => event.key === "Escape" && render());
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const updated = await api(`/v1/pipeline/stages/${encodeURIComponent(stage.id)}`, { method: "PATCH", body: { name: input.value.trim() } });
        stages = stages.map((s) => (s.id === stage.id ? { ...s, ...updated } : s));
        render();
        itemOf(stage.id)?.focus();
        announce(`Stage renamed to ${updated.name}.`);
      } catch (error) {
        if (showFieldErrors(form, error).length || error.status !== 422) notify(`The stage could not be renamed: ${error.message}`, "error");
        else input.focus();
      }
    });
    el.replaceChildren(form);
    el.draggable = false;
    input.select();
    input.focus();
  }

  function refusal(stage) {
    const count = stage.lead_count === 1 ? "1 lead" : `${fmtNumber(stage.lead_count)} leads`;
    return `“${stage.name}” still holds ${count}, so it cannot be deleted yet. Move them to another stage on the Pipeline board first.`;
  }

  async function remove(stage) {
    if (stage.lead_count > 0) return notify(refusal(stage), "info", 10000);
    if (stages.length === 1) return notify("The last stage cannot be deleted: every pipeline needs one.", "info", 10000);
    if (!confirm(`Delete the stage “${stage.name}”? It is removed from the pipeline board.`)) return;
    try {
      await api(`/v1/pipeline/stages/${encodeURIComponent(stage.id)}`, { method: "DELETE" });
      stages = stages.filter((s) => s.id !== stage.id);
      render();
      notify(`Stage “${stage.name}” deleted.`, "success");
    } catch (error) {
      // Leads may have arrived since the list was read: the server refuses, and says so.
      if (error.status === 409) {
        await load();
        notify(refusal(stages.find((s) => s.id === stage.id) || stage), "info", 10000);
      } else notify(`The stage could not be deleted: ${error.message}`, "error");
    }
  }

  function createForm() {
    const form = h(
      "form",
      { class: "card settings-form", "aria-labelledby": "stage-create-title", novalidate: true },
      h("h2", { id: "stage-create-title" }, "Add a stage"),
      h(
        "div",
        { class: "settings-row" },
        field("Name", h("input", { name: "name", id: "stage-name", maxlength: 80, autocomplete: "off" })),
        h("label", { class: "check", for: "stage-closed" }, h("input", { type: "checkbox", name: "is_closed", id: "stage-closed" }), " Closes the deal"),
        h("label", { class: "check", for: "stage-won" }, h("input", { type: "checkbox", name: "is_won", id: "stage-won" }), " Counts as won"),
      ),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "btn btn--primary" }, "Add stage")),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { name: form.elements.name.value.trim(), is_closed: form.elements.is_closed.checked || form.elements.is_won.checked, is_won: form.elements.is_won.checked };
      try {
        const created = await api("/v1/pipeline/stages", { method: "POST", body });
        showFieldErrors(form, null);
        form.reset();
        await load();
        announce(`Stage ${created.name} added.`);
        notify(`Stage “${created.name}” added.`, "success");
      } catch (error) {
        if (showFieldErrors(form, error).length || error.status !== 422) notify(`The stage could not be added: ${error.message}`, "error");
        else form.querySelector("[aria-invalid='true']")?.focus();
      }
    });
    return form;
  }

  return {
    async refresh() {
      // Never under a drag, an unsaved order or an open rename.
      if (dragging || saving || listEl.querySelector("form")) return;
      await load();
    },
    unmount() {
      controller.abort();
    },
  };
}
