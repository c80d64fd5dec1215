// Small DOM helpers shared by every view: an element builder, formatting, heat badges, and the
// page's announcement and message regions.

/**
 * h("button", {class: "x", onclick, "aria-label": "..."}, "text", child, [more])
 * Props: `class`, `dataset` (object), `on<event>` (listener), booleans (present when true),
 * everything else an attribute. `null`, `undefined` and `false` children are skipped.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) setProps(el, props);
  append(el, children);
  return el;
}

export function setProps(el, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    // Through the CSSOM, which the Content-Security-Policy allows (a style attribute it would not).
    else if (key === "style") el.style.cssText = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value" && "value" in el) el.value = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A `<label>` + control pair, the control's id derived from `name`. */
export function field(labelText, control, hint) {
  const id = control.id || `f-${control.name || Math.random().toString(36).slice(2)}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, labelText), control, hint && h("small", { class: "hint" }, hint));
}

export function select(name, options, value, props = {}) {
  const el = h("select", { name, ...props });
  for (const option of options) {
    const [val, text] = Array.isArray(option) ? option : [option, option];
    el.append(h("option", { value: val, selected: String(val) === String(value ?? "") }, text));
  }
  return el;
}

// ------------------------------------------------------------------------------------------------
// Formatting

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const dateOnly = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const number = new Intl.NumberFormat();

export const fmtNumber = (n) => number.format(n ?? 0);

export function fmtDate(iso, withTime = true) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : (withTime ? dateTime : dateOnly).format(d);
}

/** "3 minutes ago", with the exact time as a tooltip and machine-readable datetime. */
export function timeAgo(iso) {
  if (!iso) return h("span", { class: "muted" }, "never");
  const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
  const units = [["year", 31536000], ["month", 2592000], ["week", 604800], ["day", 86400], ["hour", 3600], ["minute", 60]];
  let text = "just now";
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) {
      text = relative.format(Math.round(seconds / size), unit);
      break;
    }
  }
  return h("time", { datetime: iso, title: fmtDate(iso) }, text);
}

/** A lead's display name: its name, else email, else a social handle, else "Unnamed lead". */
export function leadName(lead) {
  if (!lead) return "Unknown lead";
  const name = [lead.first_name, lead.last_name].filter(Boolean).join(" ").trim();
  if (name) return name;
  if (lead.email) return lead.email;
  const handle = (lead.social_profiles || []).find((p) => p.handle)?.handle;
  return handle ? `@${handle}` : "Unnamed lead";
}

export function fmtScore(score) {
  const n = Number(score ?? 0);
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

// ------------------------------------------------------------------------------------------------
// Heat

/** COLD (blue), WARM (amber) or HOT (red); the level is always spelled out, never colour alone. */
export function heatBadge(level, score) {
  const lvl = ["COLD", "WARM", "HOT"].includes(level) ? level : "COLD";
  return h(
    "span",
    { class: `heat heat--${lvl.toLowerCase()}`, "data-heat": lvl },
    lvl,
    score != null && " ",
    score != null && h("span", { class: "heat__score" }, fmtScore(score)),
  );
}

/** The score as a bar (decorative: the number is next to it). Full at twice the HOT threshold. */
export function scoreBar(score, level, full = 32) {
  const pct = Math.max(2, Math.min(100, (Number(score) / full) * 100));
  return h(
    "span",
    { class: `scorebar scorebar--${String(level || "COLD").toLowerCase()}`, "aria-hidden": "true" },
    h("span", { class: "scorebar__fill", style: `width:${pct.toFixed(1)}%` }),
  );
}

/** ▲ rising / ▼ falling / – steady, with the 7-day change as text for screen readers. */
export function trendArrow(trend) {
  const t = Number(trend || 0);
  const [cls, glyph, words] = t > 0 ? ["up", "▲", `rising by ${fmtScore(t)}`] : t < 0 ? ["down", "▼", `falling by ${fmtScore(-t)}`] : ["flat", "–", "steady"];
  return h(
    "span",
    { class: `trend trend--${cls}`, title: `Trend over 7 days: ${words}` },
    h("span", { "aria-hidden": "true" }, glyph),
    h("span", { class: "sr-only" }, words),
  );
}

/** Badge, bar and trend together: the heat cell of tables and cards. */
export function heatCell(lead) {
  return h("span", { class: "heatcell" }, heatBadge(lead.heat_level, lead.heat_score), scoreBar(lead.heat_score, lead.heat_level), trendArrow(lead.heat_trend));
}

// ------------------------------------------------------------------------------------------------
// Announcements and messages

/** Speaks `text` to screen readers (polite) without showing anything. */
export function announce(text) {
  const region = document.getElementById("announce");
  if (!region) return;
  region.textContent = "";
  // A fresh text node in a later task makes screen readers read a repeated message again.
  setTimeout(() => (region.textContent = text), 30);
}

/** A visible message at the top of the page; errors use role=alert. */
export function notify(text, kind = "info", timeout = kind === "error" ? 10000 : 4000) {
  const area = document.getElementById("messages");
  if (!area) return;
  const message = h(
    "div",
    { class: `message message--${kind}`, role: kind === "error" ? "alert" : "status" },
    h("span", {}, text),
    h("button", { type: "button", class: "message__close", "aria-label": "Dismiss message", onclick: () => message.remove() }, "×"),
  );
  area.append(message);
  if (timeout) setTimeout(() => message.remove(), timeout);
  return message;
}

/** A panel's content while its request is in flight, or when it failed. */
export function loading(text = "Loading…") {
  return h("p", { class: "loading", role: "status" }, text);
}

export function failure(error, what) {
  const status = error?.status;
  const text =
    status === 501
      ? `${what}: this part of the API is not available yet (501). It will appear once the server implements it.`
      : `${what} could not be loaded: ${error?.message || error}`;
  return h("p", { class: "failure", role: "alert" }, text);
}

/** Sets an element's text only when it differs, so live regions do not repeat themselves. */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * Runs `fn` (which re-renders part of `container`) and puts the focus back on the link of the
 * item with the same `key` attribute, if the focus was inside such an item before.
 */
export async function keepingFocus(container, key, fn) {
  const active = document.activeElement;
  const id = container.contains(active) ? active.closest(`[${key}]`)?.getAttribute(key) : null;
  await fn();
  if (id && !container.contains(document.activeElement)) container.querySelector(`[${key}="${CSS.escape(id)}"] a`)?.focus({ preventScroll: true });
}

/** Debounces a function by `ms`. */
export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
