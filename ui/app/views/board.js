// The pipeline board: a column per stage, cards with heat badges. Cards move by native HTML
// drag-and-drop (between and within columns) or from the keyboard (focus a card, Alt + arrow
// keys, or its move buttons). A move shows at once, is persisted with
// POST /v1/leads/{id}/move {stage_id, before_lead_id?, after_lead_id?}, and is rolled back with a
// visible message when the server refuses it.

import { api, isAbort, qs } from "../api.js";
import { announce, failure, h, heatBadge, leadName, loading, notify, replace, trendArrow } from "../dom.js";

const PAGE = 50;

export function mount(root, ctx) {
  ctx.setTitle("Pipeline");
  const controller = new AbortController();
  let stages = [];
  let dragging = null;
  let marker = null;
  let moving = 0;
  let refreshWanted = false;

  const boardEl = h("div", { class: "board" }, loading("Loading the pipeline…"));
  replace(
    root,
    h("div", { class: "page-head" }, h("h1", { tabindex: "-1" }, "Pipeline")),
    h("p", { id: "board-help", class: "hint" }, "Drag a card to another place or stage. With the keyboard, focus a card and press Alt + ↑/↓ to reorder it, or Alt + ←/→ to move it to the previous or next stage; arrow keys alone move between cards."),
    boardEl,
  );

  const boardRequest = api(`/v1/pipeline/board${qs({ limit: PAGE })}`, { signal: controller.signal });
  boardRequest.then(render, (error) => !isAbort(error) && replace(boardEl, failure(error, "The pipeline board")));

  // Rendering ------------------------------------------------------------------------------------
  const listOf = (stageId) => boardEl.querySelector(`ol[data-stage-id="${CSS.escape(stageId)}"]`);
  const cardOf = (leadId) => boardEl.querySelector(`li[data-lead-id="${CSS.escape(leadId)}"]`);
  const cardsOf = (list) => [...list.children].filter((el) => el.classList.contains("lead-card"));
  const stageName = (stageId) => stages.find((s) => s.id === stageId)?.name || "the stage";

  // What a card shows: a refresh keeps a card whose key is unchanged (the same DOM node).
  const cardKey = (lead) => JSON.stringify([leadName(lead), lead.company, lead.heat_level, lead.heat_score, lead.heat_trend]);

  function card(lead) {
    const name = leadName(lead);
    const el = h(
      "li",
      { class: "lead-card", tabindex: "0", draggable: "true", dataset: { leadId: lead.id, name, heat: lead.heat_level, key: cardKey(lead) }, "aria-label": `${name}, ${lead.heat_level} ${lead.heat_score}`, "aria-describedby": "board-help" },
      h("a", { href: `/app/leads/${encodeURIComponent(lead.id)}`, draggable: "false", class: "lead-card__name", tabindex: "-1" }, name),
      lead.company && h("div", { class: "sub" }, lead.company),
      h("div", { class: "lead-card__heat" }, heatBadge(lead.heat_level, lead.heat_score), trendArrow(lead.heat_trend)),
      h(
        "div",
        { class: "lead-card__moves", role: "group", "aria-label": `Move ${name}` },
        moveButton("left", "◀", "Move to the previous stage"),
        moveButton("up", "▲", "Move up"),
        moveButton("down", "▼", "Move down"),
        moveButton("right", "▶", "Move to the next stage"),
      ),
    );
    return el;
  }

  function moveButton(dir, glyph, text) {
    return h("button", { type: "button", class: "move-btn", tabindex: "-1", dataset: { move: dir }, "aria-label": text, title: text }, glyph);
  }

  function column(stage) {
    const list = h("ol", { class: "column__cards", dataset: { stageId: stage.id }, "aria-labelledby": `col-${stage.id}` }, (stage.leads || []).map(card));
    const more = h("button", { type: "button", class: "btn btn--small", dataset: { moreOf: stage.id }, hidden: !stage.next_cursor }, "Show more");
    // The stage as last rendered: a live refresh replaces the stage objects.
    more.addEventListener("click", () => loadMore(stages.find((s) => s.id === stage.id) || stage, list, more));
    return h(
      "section",
      { class: `column${stage.is_won ? " column--won" : stage.is_closed ? " column--closed" : ""}`, dataset: { stageId: stage.id } },
      h("h2", { class: "column__title", id: `col-${stage.id}` }, stage.name, " ", h("span", { class: "column__count", dataset: { count: stage.id } }, String(stage.lead_count ?? stage.leads?.length ?? 0)), h("span", { class: "sr-only" }, " leads"), stage.is_won ? h("span", { class: "pill pill--won" }, "won") : stage.is_closed ? h("span", { class: "pill" }, "closed") : null),
      list,
      more,
    );
  }

  function render(data) {
    stages = data.stages || [];
    if (!stages.length) return replace(boardEl, h("p", { class: "muted" }, "This org has no pipeline stages yet."));
    replace(boardEl, stages.map(column));
  }

  /**
   * A live refresh: with the same columns, each column gets the wanted cards in the wanted order,
   * reusing the DOM node of every card that shows the same thing, and a column already right is
   * not touched. So a notice never pulls a card from under the pointer or the focus, and a board
   * nobody else changed stays exactly as it is. Other column sets are rendered anew.
   */
  function reconcile(data) {
    const next = data.stages || [];
    const sameColumns = next.length === stages.length && next.every((s, i) => s.id === stages[i].id && s.name === stages[i].name && s.is_won === stages[i].is_won && s.is_closed === stages[i].is_closed);
    if (!sameColumns) return render(data);
    stages = next;
    for (const stage of stages) {
      const list = listOf(stage.id);
      const wanted = (stage.leads || []).map((lead) => {
        const shown = cardOf(lead.id);
        return shown && shown.dataset.key === cardKey(lead) ? shown : card(lead);
      });
      const current = cardsOf(list);
      if (wanted.length !== current.length || wanted.some((el, i) => el !== current[i])) list.replaceChildren(...wanted);
      const count = String(stage.lead_count ?? wanted.length);
      const countEl = boardEl.querySelector(`[data-count="${CSS.escape(stage.id)}"]`);
      if (countEl && countEl.textContent !== count) countEl.textContent = count;
      const more = boardEl.querySelector(`[data-more-of="${CSS.escape(stage.id)}"]`);
      if (more) more.hidden = !stage.next_cursor;
    }
  }

  async function loadMore(stage, list, button) {
    button.disabled = true;
    try {
      const page = await api(`/v1/pipeline/board${qs({ stage_id: stage.id, cursor: stage.next_cursor, limit: PAGE })}`);
      const col = (page.stages || [])[0] || {};
      const known = new Set(cardsOf(list).map((c) => c.dataset.leadId));
      list.append(...(col.leads || []).filter((l) => !known.has(l.id)).map(card));
      stage.next_cursor = col.next_cursor;
      button.hidden = !col.next_cursor;
    } catch (error) {
      notify(`More leads of ${stage.name} could not be loaded: ${error.message}`, "error");
    } finally {
      button.disabled = false;
    }
  }

  function bumpCount(stageId, delta) {
    const el = boardEl.querySelector(`[data-count="${CSS.escape(stageId)}"]`);
    if (el) el.textContent = String(Math.max(0, Number(el.textContent) + delta));
  }

  function insertAt(list, el, index) {
    const cards = cardsOf(list).filter((c) => c !== el);
    if (index >= cards.length) {
      // After the last card (and before nothing else: the marker is gone by now).
      if (cards.length) cards[cards.length - 1].after(el);
      else list.prepend(el);
    } else cards[index].before(el);
  }

  // Moving ---------------------------------------------------------------------------------------
  /** Moves a card to `index` among the other cards of stage `toStageId`, then persists it. */
  async function moveCard(leadId, toStageId, index) {
    const el = cardOf(leadId);
    const toList = listOf(toStageId);
    if (!el || !toList) return;
    const fromList = el.parentElement;
    const fromStageId = fromList.dataset.stageId;
    const fromIndex = cardsOf(fromList).indexOf(el);
    if (fromList === toList && index === fromIndex) return;
    const hadFocus = el.contains(document.activeElement);

    insertAt(toList, el, index);
    if (fromStageId !== toStageId) {
      bumpCount(fromStageId, -1);
      bumpCount(toStageId, +1);
    }
    if (hadFocus) el.focus();
    const siblings = cardsOf(toList);
    const position = siblings.indexOf(el);
    const body = { stage_id: toStageId };
    if (siblings[position + 1]) body.before_lead_id = siblings[position + 1].dataset.leadId;
    if (siblings[position - 1]) body.after_lead_id = siblings[position - 1].dataset.leadId;
    const name = el.dataset.name;

    moving++;
    el.classList.add("is-saving");
    el.setAttribute("aria-busy", "true");
    try {
      const lead = await api(`/v1/leads/${encodeURIComponent(leadId)}/move`, { method: "POST", body });
      // The answer is the moved lead: refresh the card's heat (the move may have rescored it).
      if (lead?.id) {
        el.querySelector(".lead-card__heat").replaceChildren(heatBadge(lead.heat_level, lead.heat_score), trendArrow(lead.heat_trend));
        Object.assign(el.dataset, { heat: lead.heat_level, key: cardKey(lead) });
      }
      announce(`${name} moved to ${stageName(toStageId)}, position ${position + 1} of ${siblings.length}.`);
    } catch (error) {
      // Roll back: the card returns to where it was, and the user is told why.
      insertAt(fromList, el, fromIndex);
      if (fromStageId !== toStageId) {
        bumpCount(toStageId, -1);
        bumpCount(fromStageId, +1);
      }
      if (hadFocus) el.focus();
      notify(`${name} could not be moved to ${stageName(toStageId)}: ${error.message} The card was put back.`, "error");
    } finally {
      moving--;
      el.classList.remove("is-saving");
      el.removeAttribute("aria-busy");
      if (!moving && refreshWanted) refresh();
    }
  }

  function keyboardMove(el, dir) {
    const list = el.parentElement;
    const cards = cardsOf(list);
    const index = cards.indexOf(el);
    const stageIndex = stages.findIndex((s) => s.id === list.dataset.stageId);
    const name = el.dataset.name;
    if (dir === "up" || dir === "down") {
      const target = dir === "up" ? index - 1 : index + 1;
      if (target < 0 || target >= cards.length) return announce(`${name} is already at the ${dir === "up" ? "top" : "bottom"} of ${stageName(list.dataset.stageId)}.`);
      return moveCard(el.dataset.leadId, list.dataset.stageId, target);
    }
    const next = stages[stageIndex + (dir === "left" ? -1 : 1)];
    if (!next) return announce(`${name} is already in the ${dir === "left" ? "first" : "last"} stage.`);
    return moveCard(el.dataset.leadId, next.id, Math.min(index, cardsOf(listOf(next.id)).length));
  }

  function focusNeighbour(el, dir) {
    const list = el.parentElement;
    const cards = cardsOf(list);
    const index = cards.indexOf(el);
    if (dir === "up") return cards[index - 1]?.focus();
    if (dir === "down") return cards[index + 1]?.focus();
    const lists = [...boardEl.querySelectorAll("ol.column__cards")];
    let i = lists.indexOf(list);
    // The nearest column in that direction that has cards.
    for (i += dir === "left" ? -1 : 1; i >= 0 && i < lists.length; i += dir === "left" ? -1 : 1) {
      const other = cardsOf(lists[i]);
      if (other.length) return other[Math.min(index, other.length - 1)].focus();
    }
  }

  boardEl.addEventListener("keydown", (event) => {
    const el = event.target.closest?.(".lead-card");
    const dir = { ArrowUp: "up", ArrowDown: "down", ArrowLeft: "left", ArrowRight: "right" }[event.key];
    if (!el || !dir || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (event.altKey) {
      // Alt + ←/→ would otherwise be the browser's Back / Forward.
      event.preventDefault();
      keyboardMove(el, dir);
    } else if (event.target === el) {
      event.preventDefault();
      focusNeighbour(el, dir);
    }
  });
  boardEl.addEventListener("keydown", (event) => {
    // Enter on a focused card opens the lead.
    if (event.key === "Enter" && event.target.classList?.contains("lead-card")) event.target.querySelector("a").click();
  });
  boardEl.addEventListener("click", (event) => {
    const button = event.target.closest?.("button[data-move]");
    if (button) keyboardMove(button.closest(".lead-card"), button.dataset.move);
  });

  // Native drag-and-drop -------------------------------------------------------------------------
  const listUnder = (target) => target.closest?.("ol.column__cards") || target.closest?.(".column")?.querySelector("ol.column__cards");

  function dropIndex(list, y) {
    const cards = cardsOf(list).filter((c) => c !== dragging);
    const index = cards.findIndex((c) => {
      const r = c.getBoundingClientRect();
      return y < r.top + r.height / 2;
    });
    return index === -1 ? cards.length : index;
  }

  function showMarker(list, index) {
    marker ||= h("li", { class: "drop-marker", "aria-hidden": "true" });
    const cards = cardsOf(list).filter((c) => c !== dragging);
    if (index >= cards.length) list.append(marker);
    else cards[index].before(marker);
  }

  function endDrag() {
    marker?.remove();
    dragging?.classList.remove("is-dragging");
    boardEl.classList.remove("is-dragging");
    dragging = null;
    if (!moving && refreshWanted) refresh();
  }

  boardEl.addEventListener("dragstart", (event) => {
    const el = event.target.closest?.(".lead-card");
    if (!el) return;
    dragging = el;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", el.dataset.leadId);
    boardEl.classList.add("is-dragging");
    requestAnimationFrame(() => el.classList.add("is-dragging"));
  });
  boardEl.addEventListener("dragover", (event) => {
    const list = dragging && listUnder(event.target);
    if (!list) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    showMarker(list, dropIndex(list, event.clientY));
  });
  boardEl.addEventListener("drop", (event) => {
    const list = dragging && listUnder(event.target);
    if (!list) return;
    event.preventDefault();
    const index = dropIndex(list, event.clientY);
    const leadId = dragging.dataset.leadId;
    endDrag();
    moveCard(leadId, list.dataset.stageId, index);
  });
  boardEl.addEventListener("dragend", endDrag);

  // Live updates ---------------------------------------------------------------------------------
  async function refresh() {
    // Never re-render under a drag or an unsaved move: do it right after instead.
    if (dragging || moving) {
      refreshWanted = true;
      return;
    }
    refreshWanted = false;
    const loaded = Math.max(PAGE, ...[...boardEl.querySelectorAll("ol.column__cards")].map((l) => cardsOf(l).length));
    let data;
    try {
      data = await api(`/v1/pipeline/board${qs({ limit: Math.min(200, loaded) })}`, { signal: controller.signal });
    } catch {
      return;
    }
    if (dragging || moving) {
      refreshWanted = true;
      return;
    }
    const focused = document.activeElement?.closest?.(".lead-card")?.dataset.leadId;
    reconcile(data);
    if (focused && !boardEl.contains(document.activeElement)) cardOf(focused)?.focus({ preventScroll: true });
  }

  return {
    refresh,
    unmount() {
      controller.abort();
    },
  };
}
