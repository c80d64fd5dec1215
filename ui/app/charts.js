// Hand-written SVG charts: horizontal bars, a funnel and a multi-series line chart. Each chart is
// an <svg role="img"> whose <title> and <desc> carry the figures as text for screen readers.

import { fmtNumber } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
let uid = 0;

export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null && v !== false) el.setAttribute(k, String(v));
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function frame(width, height, title, desc, ...children) {
  const id = `chart-${++uid}`;
  return s(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": `${id}-t ${id}-d`, class: "chart", preserveAspectRatio: "xMinYMin meet" },
    s("title", { id: `${id}-t` }, title),
    s("desc", { id: `${id}-d` }, desc),
    ...children,
  );
}

/** A "nice" upper bound for an axis: 1, 2, 5 × 10^n at or above `max`. */
function niceMax(max) {
  if (max <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((m) => m * p).find((v) => v >= max);
}

/**
 * Horizontal bars. rows: [{label, value, color?, key?}]. Each bar's group carries
 * data-key/data-value so the figures can be read back.
 */
export function bars(rows, { title, labelWidth = 110, width = 420, rowHeight = 28, color = "#2563eb" } = {}) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  const plot = width - labelWidth - 48;
  const height = rows.length * rowHeight + 8;
  const desc = rows.map((r) => `${r.label}: ${fmtNumber(r.value)}`).join(", ");
  return frame(
    width,
    height,
    title,
    desc,
    rows.map((r, i) => {
      const y = 4 + i * rowHeight;
      const w = Math.max(r.value > 0 ? 3 : 0, (r.value / max) * plot);
      return s(
        "g",
        { "data-key": r.key ?? r.label, "data-value": r.value },
        s("text", { x: labelWidth - 8, y: y + rowHeight / 2, "text-anchor": "end", "dominant-baseline": "middle", class: "chart__label" }, r.label),
        s("rect", { x: labelWidth, y: y + 4, width: plot, height: rowHeight - 8, rx: 3, class: "chart__track" }),
        s("rect", { x: labelWidth, y: y + 4, width: w.toFixed(1), height: rowHeight - 8, rx: 3, fill: r.color || color }),
        s("text", { x: labelWidth + w + 6, y: y + rowHeight / 2, "dominant-baseline": "middle", class: "chart__value" }, fmtNumber(r.value)),
      );
    }),
  );
}

/** A funnel: one centred bar per stage, in pipeline order, with its count and share of the top. */
export function funnel(rows, { title, width = 420, rowHeight = 30 } = {}) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  const labelWidth = 110;
  const plot = width - labelWidth - 10;
  const height = rows.length * rowHeight + 8;
  const desc = rows.map((r) => `${r.label}: ${fmtNumber(r.value)}`).join(", ");
  return frame(
    width,
    height,
    title,
    desc,
    rows.map((r, i) => {
      const y = 4 + i * rowHeight;
      const w = Math.max(4, (r.value / max) * plot);
      const x = labelWidth + (plot - w) / 2;
      const shade = r.closed ? "#475569" : `hsl(221 83% ${Math.min(50, 34 + i * 3)}%)`;
      return s(
        "g",
        { "data-key": r.key ?? r.label, "data-value": r.value },
        s("text", { x: labelWidth - 8, y: y + rowHeight / 2, "text-anchor": "end", "dominant-baseline": "middle", class: "chart__label" }, r.label),
        s("rect", { x: x.toFixed(1), y: y + 3, width: w.toFixed(1), height: rowHeight - 6, rx: 4, fill: shade }),
        s("text", { x: labelWidth + plot / 2, y: y + rowHeight / 2, "text-anchor": "middle", "dominant-baseline": "middle", class: "chart__value chart__value--on" }, fmtNumber(r.value)),
      );
    }),
  );
}

/**
 * Lines over time. series: [{key, label, color, dash?, values: number[]}] over `buckets`
 * (Date[] of bucket starts).
 */
export function lines(series, buckets, { title, width = 860, height = 250, fmtTick } = {}) {
  const pad = { l: 36, r: 12, t: 12, b: 28 };
  const plotW = width - pad.l - pad.r;
  const plotH = height - pad.t - pad.b;
  const max = niceMax(Math.max(0, ...series.flatMap((x) => x.values)));
  const n = Math.max(1, buckets.length - 1);
  const X = (i) => pad.l + (i / n) * plotW;
  const Y = (v) => pad.t + plotH - (v / max) * plotH;
  const ticks = [0, max / 2, max];
  const step = Math.max(1, Math.ceil(buckets.length / 6));
  const desc = series.map((x) => `${x.label}: ${fmtNumber(x.values.reduce((a, b) => a + b, 0))} in total`).join(", ");
  return frame(
    width,
    height,
    title,
    desc,
    ticks.map((t) => s("g", {}, s("line", { x1: pad.l, x2: width - pad.r, y1: Y(t), y2: Y(t), class: "chart__grid" }), s("text", { x: pad.l - 6, y: Y(t), "text-anchor": "end", "dominant-baseline": "middle", class: "chart__tick" }, Number.isInteger(t) ? t : t.toFixed(1)))),
    buckets.map((b, i) => (i % step === 0 || i === buckets.length - 1 ? s("text", { x: X(i), y: height - 8, "text-anchor": "middle", class: "chart__tick" }, fmtTick ? fmtTick(b) : b.toISOString().slice(5, 10)) : null)),
    series.map((x) =>
      s(
        "g",
        { "data-key": x.key, "data-total": x.values.reduce((a, b) => a + b, 0), "data-values": x.values.join(" ") },
        s("polyline", { points: x.values.map((v, i) => `${X(i).toFixed(1)},${Y(v).toFixed(1)}`).join(" "), fill: "none", stroke: x.color, "stroke-width": 2.5, "stroke-dasharray": x.dash, "stroke-linejoin": "round" }),
        x.values.map((v, i) => (v > 0 ? s("circle", { cx: X(i).toFixed(1), cy: Y(v).toFixed(1), r: 3.5, fill: x.color }, s("title", {}, `${x.label}: ${v}`)) : null)),
      ),
    ),
  );
}
