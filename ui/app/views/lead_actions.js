// The actions of a lead's page: edit (PATCH with If-Match; a conflict shows their values and
// yours, to take theirs or save yours over them), merge another lead into this one (choosing each
// differing field side by side), erase (what goes and what stays, typed confirmation) and export.

import { api, qs } from "../api.js";
import { announce, debounce, field, h, leadName, notify, replace } from "../dom.js";
import { LEAD_FIELDS, changedFields, clearErrors, leadFields, openDialog, readLeadForm, showErrors } from "../forms.js";
import { ownerName } from "../members.js";
import { label } from "../vocab.js";

const FIELD_LABELS = Object.fromEntries([...LEAD_FIELDS.map(([name, text]) => [name, text]), ["source", "Source"], ["owner_id", "Owner"], ["tags", "Tags"]]);
/** The fields a merge lets you choose between (touchpoints, profiles and tags always join). */
const MERGE_FIELDS = [...LEAD_FIELDS.map(([name]) => name), "owner_id"];
/** The word typed to confirm an erasure. */
const ERASE_WORD = "ERASE";

/**
 * Fills `bar` with the action buttons; `page` gives the lead (`lead()`), the members, and what to
 * do after a save (`saved(lead)`) or the erasure (`erased()`).
 */
export function leadActions(bar, page) {
  const enc = encodeURIComponent(page.id);
  const button = (text, onclick, extra = "") => h("button", { type: "button", class: `btn${extra}`, onclick }, text);
  replace(bar, page.writer && button("Edit", edit), page.writer && button("Merge…", merge), button("Export JSON", exportLead), page.writer && button("Delete…", erase, " btn--danger"));

  const empty = (value) => value == null || value === "" || (Array.isArray(value) && !value.length);
  const text = (name, value) => {
    if (empty(value)) return "(empty)";
    if (name === "owner_id") return ownerName(value, page.members());
    if (name === "source") return label(value);
    return Array.isArray(value) ? value.join(", ") : String(value);
  };
  const show = (name, value) => (empty(value) ? h("span", { class: "muted" }, "(empty)") : text(name, value));

  // Edit ------------------------------------------------------------------------------------------
  function edit() {
    let base = page.lead();
    const fields = h("div", {}, leadFields(base, page.members(), "edit"));
    const conflict = h("section", { class: "conflict", "aria-labelledby": "conflict-h", hidden: true });
    const summary = h("p", { class: "field-error", role: "alert", tabindex: "-1", hidden: true });
    const cancel = button("Cancel", () => dialog.close());
    const save = h("button", { type: "submit", class: "btn btn--primary" }, "Save changes");
    const form = h("form", { class: "lead-form", novalidate: true }, fields, conflict, summary, h("div", { class: "actions" }, cancel, save));
    const dialog = openDialog({ title: `Edit ${leadName(base)}`, content: form, wide: true });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      write(base.version, changedFields(base, readLeadForm(form)));
    });

    /** Sends `mine` (only the fields changed in the form) against `version`. */
    async function write(version, mine) {
      clearErrors(form, summary);
      if (!Object.keys(mine).length) {
        dialog.close();
        notify("Nothing changed.");
        return;
      }
      save.disabled = true;
      try {
        const next = await api(`/v1/leads/${enc}`, { method: "PATCH", body: mine, headers: { "If-Match": `"${version}"` } });
        dialog.close();
        page.saved(next);
        notify(`${leadName(next)} is saved.`, "success");
      } catch (error) {
        if (error.status === 412) await showConflict(mine);
        else showErrors(form, error, summary);
      } finally {
        save.disabled = false;
      }
    }

    /** Someone saved the lead since the form was filled: their values next to yours. */
    async function showConflict(mine) {
      let theirs;
      try {
        theirs = await api(`/v1/leads/${enc}`);
      } catch (error) {
        showErrors(form, error, summary);
        return;
      }
      const changedByThem = Object.keys(FIELD_LABELS).filter((name) => JSON.stringify(theirs[name] ?? null) !== JSON.stringify(base[name] ?? null));
      const names = [...new Set([...Object.keys(mine), ...changedByThem])];
      const row = (name) => h("tr", { dataset: { field: name } }, h("th", { scope: "row" }, FIELD_LABELS[name]), h("td", {}, show(name, theirs[name])), h("td", {}, name in mine ? show(name, mine[name]) : h("span", { class: "muted" }, "(not changed by you)")));
      replace(
        conflict,
        h("h3", { id: "conflict-h", tabindex: "-1" }, "Someone else saved this lead while you were editing"),
        h("p", {}, "Nothing you typed is lost. Here is what they saved and what you are about to save:"),
        h("table", { class: "table table--compact" }, h("caption", { class: "sr-only" }, "Their saved values and your values"), h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Saved by them"), h("th", { scope: "col" }, "Yours"))), h("tbody", {}, names.map(row))),
        h(
          "div",
          { class: "actions" },
          button("Use their version", () => {
            base = theirs;
            replace(fields, leadFields(theirs, page.members(), "edit"));
            conflict.hidden = true;
            page.saved(theirs);
            announce("The form now shows their version.");
            fields.querySelector("input")?.focus();
          }),
          button(
            "Save mine over theirs",
            () => {
              // Only the fields you changed are sent: their other changes stay.
              base = theirs;
              conflict.hidden = true;
              write(theirs.version, mine);
            },
            " btn--primary",
          ),
        ),
      );
      conflict.hidden = false;
      conflict.querySelector("h3").focus();
    }
  }

  // Merge -----------------------------------------------------------------------------------------
  function merge() {
    const target = page.lead();
    const search = h("input", { type: "search", name: "q", id: "merge-q", autocomplete: "off" });
    const results = h("ul", { class: "merge-results", "aria-label": "Matching leads" });
    const status = h("p", { class: "muted", role: "status" });
    const finder = h("div", {}, field("Find the other lead", search, "Name, email or company. The lead you choose is merged into this one."), status, results);
    const dialog = openDialog({ title: `Merge another lead into ${leadName(target)}`, content: finder, wide: true });
    const find = debounce(async () => {
      const q = search.value.trim();
      if (!q) return replace(results);
      try {
        const answer = await api(`/v1/leads${qs({ q, limit: 10 })}`);
        const others = (answer.items || []).filter((l) => l.id !== target.id);
        status.textContent = others.length ? `${others.length} lead${others.length === 1 ? "" : "s"} found.` : "No other lead matches.";
        replace(results, others.map((other) => h("li", {}, button(`${leadName(other)}${other.email ? ` · ${other.email}` : ""}${other.company ? ` · ${other.company}` : ""}`, () => compare(other), " btn--choice"))));
      } catch (error) {
        status.textContent = `The search failed: ${error.message}`;
      }
    }, 250);
    search.addEventListener("input", find);

    /** Side by side: for each field the two leads hold differently, which value to keep. */
    function compare(source) {
      const differing = MERGE_FIELDS.filter((name) => (target[name] ?? null) !== (source[name] ?? null));
      const choice = (name, side, lead, checked) =>
        h("label", { class: "choice" }, h("input", { type: "radio", name: `keep-${name}`, value: side, checked, "aria-label": `${FIELD_LABELS[name]}: keep ${text(name, lead[name])} (${side === "target" ? "this lead" : "merged lead"})` }), " ", show(name, lead[name]));
      const error = h("p", { class: "field-error", role: "alert", hidden: true });
      const submit = h("button", { type: "submit", class: "btn btn--primary" }, "Merge the leads");
      const form = h(
        "form",
        { class: "merge-form" },
        h("p", {}, `${leadName(source)} will be merged into ${leadName(target)}: every touchpoint, social profile and tag of both is kept, the heat is recalculated, and ${leadName(source)}'s id then leads here.`),
        differing.length
          ? h(
              "table",
              { class: "table table--compact merge-table" },
              h("caption", {}, "Choose the value to keep for each field that differs"),
              h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, `This lead: ${leadName(target)}`), h("th", { scope: "col" }, `Merged in: ${leadName(source)}`))),
              h("tbody", {}, differing.map((name) => h("tr", { dataset: { field: name } }, h("th", { scope: "row" }, FIELD_LABELS[name]), h("td", {}, choice(name, "target", target, target[name] != null)), h("td", {}, choice(name, "source", source, target[name] == null))))),
            )
          : h("p", { class: "muted" }, "The two leads hold the same values in every field."),
        error,
        h("div", { class: "actions" }, button("Back", () => dialog.setContent(finder)), submit),
      );
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        error.hidden = true;
        submit.disabled = true;
        try {
          const merged = await api(`/v1/leads/${enc}/merge`, { method: "POST", body: { source_lead_id: source.id }, headers: { "Idempotency-Key": crypto.randomUUID() } });
          // The merge fills this lead's empty fields from the other; the choices are applied after.
          const patch = {};
          for (const name of differing) {
            const keep = form.querySelector(`input[name="keep-${name}"]:checked`)?.value === "source" ? source : target;
            if ((merged[name] ?? null) !== (keep[name] ?? null)) patch[name] = keep[name] ?? null;
          }
          const next = Object.keys(patch).length ? await api(`/v1/leads/${enc}`, { method: "PATCH", body: patch, headers: { "If-Match": `"${merged.version}"` } }) : merged;
          dialog.close();
          page.saved(next);
          notify(`${leadName(source)} was merged into ${leadName(next)}.`, "success");
        } catch (failed) {
          error.textContent = `The leads were not merged: ${failed.message}`;
          error.hidden = false;
        } finally {
          submit.disabled = false;
        }
      });
      dialog.setContent(form);
    }
  }

  // Erase -----------------------------------------------------------------------------------------
  function erase() {
    const name = leadName(page.lead());
    const confirm = h("input", { type: "text", name: "confirm", id: "erase-confirm", autocomplete: "off", spellcheck: "false" });
    const submit = h("button", { type: "submit", class: "btn btn--danger", disabled: true }, "Erase this lead");
    const error = h("p", { class: "field-error", role: "alert", hidden: true });
    const form = h(
      "form",
      { class: "erase-form" },
      h("p", {}, h("strong", {}, `Erasing ${name} deletes, at once and for good:`)),
      h(
        "ul",
        {},
        h("li", {}, "the lead: its contact details, owner, stage, tags, custom fields and social profiles;"),
        h("li", {}, "every touchpoint of its timeline, and its heat history;"),
        h("li", {}, "the redirects of leads once merged into it;"),
        h("li", {}, "the website visits it was identified with, and their raw tracking events;"),
        h("li", {}, "stored API answers that name it, and the raw webhook payloads that name the person (processed ones now, pending ones once processed)."),
      ),
      h("p", {}, "What stays: a salted hash of its email, phone and social account ids with the time of the erasure, and nothing readable. It stops an older event (a late redelivery) from bringing the person back; a newer one, the person getting in touch again, creates a new lead."),
      h("p", {}, "This cannot be undone. Export the lead first if you need a copy."),
      field(`Type ${ERASE_WORD} to confirm`, confirm),
      error,
      h("div", { class: "actions" }, button("Cancel", () => dialog.close()), submit),
    );
    const dialog = openDialog({ title: `Erase ${name}?`, content: form });
    confirm.addEventListener("input", () => (submit.disabled = confirm.value.trim().toUpperCase() !== ERASE_WORD));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (submit.disabled) return;
      submit.disabled = true;
      try {
        await api(`/v1/leads/${enc}`, { method: "DELETE" });
        dialog.close();
        notify(`${name} was erased.`, "success");
        page.erased();
      } catch (failed) {
        error.textContent = `The lead was not erased: ${failed.message}`;
        error.hidden = false;
        submit.disabled = false;
      }
    });
  }

  // Export ----------------------------------------------------------------------------------------
  async function exportLead() {
    try {
      const data = await api(`/v1/leads/${enc}/export`);
      const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
      const link = h("a", { href: url, download: `lead-${page.id}.json`, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      announce("The lead's export is downloaded.");
    } catch (error) {
      notify(`The export failed: ${error.message}`, "error");
    }
  }

  return {
    show() {
      bar.hidden = false;
    },
  };
}
