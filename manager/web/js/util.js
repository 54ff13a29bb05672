// Small helpers shared by every view: building DOM, formatting numbers, times and statuses.

/** h("div", {class: "x", onclick: f}, child, "text", [more]) -> an element. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** A metric as the API sends it: a number, or "NaN"/"Infinity" strings; null when missing. */
export function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

export function fmtMetric(value) {
  if (typeof value === "string") return value; // "NaN", "Infinity"
  if (value === null || value === undefined) return "–";
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return value.toExponential(3);
  return String(Number(value.toPrecision(5)));
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, seconds);
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  const hours = Math.floor(s / 3600);
  return `${hours}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export function fmtTime(ms) {
  if (!ms) return "–";
  const d = new Date(ms);
  const today = new Date();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return d.toDateString() === today.toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}

export function badge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

/** The name a decision shows in a table cell: "conv5x5", "in0+in1", "none", or the value. */
export function decisionText(value) {
  if (value === undefined) return "";
  if (value && typeof value === "object" && !Array.isArray(value) && "_value" in value) value = value._value;
  if (Array.isArray(value)) return value.length ? value.join("+") : "none";
  if (typeof value === "number") return fmtMetric(value);
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** Indices a decision picks among `candidates` (by _idx when present, else by name). */
export function decisionIndices(value, candidates) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    if ("_idx" in value) return [].concat(value._idx).filter((i) => Number.isInteger(i));
    value = value._value;
  }
  const names = [].concat(value);
  return names.map((n) => (typeof n === "number" ? n : candidates.indexOf(n))).filter((i) => i >= 0);
}

export const PALETTE = [
  "#2f6fde", "#e8702a", "#1f9d55", "#d64545", "#8a5cd1", "#17a2b8", "#c98a00", "#e05fa4",
  "#5b6b8c", "#7bb241", "#a0522d", "#00897b",
];

export function color(i) {
  return PALETTE[i % PALETTE.length];
}

export function experimentDuration(exp, now = Date.now()) {
  if (!exp.startTime) return null;
  return ((exp.endTime || now) - exp.startTime) / 1000;
}
