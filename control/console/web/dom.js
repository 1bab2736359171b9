// DOM helpers: every element is built with createElement and text nodes
// (never markup strings), so no value from the API can inject markup, and
// the page needs no inline script or style (the CSP forbids both).

// h(tag, attrs, ...children): attrs' "on*" functions become listeners,
// booleans toggle attributes, other values are set as attributes.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// svg(tag, attrs, ...children) is h in the SVG namespace.
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

// errorBox shows an API error where it happened: its message, the field
// it names and the HTTP status, in an alert that screen readers announce.
export function errorBox(err) {
  const parts = [];
  if (err && err.status) parts.push(h("strong", {}, `Error ${err.status}: `));
  else parts.push(h("strong", {}, "Error: "));
  parts.push(err && err.message ? err.message : String(err));
  if (err && err.field) parts.push(h("span", { class: "field" }, ` (field: ${err.field})`));
  if (err && err.status === 403) parts.push(h("span", {}, " Your token's role does not allow this."));
  return h("div", { class: "error", role: "alert", "data-status": err && err.status }, parts);
}

// badge is a status word with a symbol and a class for its colour: the
// word tells it, the colour only repeats it.
export function badge(kind, word) {
  const symbol = { ok: "✓", warn: "!", bad: "✗", info: "•" }[kind] || "";
  return h("span", { class: `badge ${kind}` }, h("span", { "aria-hidden": "true" }, `${symbol} `), word);
}

// table builds a table with a caption, column headers (scope=col) and one
// row per item, the first cell a row header; a column is {head, cell: item
// => node|text, num?: bool}. opts.narrow sizes it to its content.
export function table(caption, columns, rows, empty = "None.", opts = {}) {
  if (!rows.length) return h("p", { class: "hint" }, `${caption}: ${empty}`);
  // A wide table scrolls in its own region, reachable by keyboard.
  return h("div", { class: "table-wrap", role: "region", "aria-label": caption, tabindex: "0" }, h("table", { class: opts.narrow ? "narrow" : null },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, columns.map(c => h("th", { scope: "col", class: c.num ? "num" : null }, c.head)))),
    h("tbody", {}, rows.map(r => h("tr", {}, columns.map((c, i) => {
      const v = c.cell(r);
      return i === 0 && c.rowHeader !== false ?
        h("th", { scope: "row", class: c.num ? "num" : null }, v) :
        h("td", { class: c.num ? "num" : null }, v);
    }))))));
}

// facts is a definition list of label → value pairs (pairs whose value is
// undefined are left out).
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(p => p[1] !== undefined && p[1] !== null && p[1] !== "")
    .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function fmtTime(s) {
  if (!s || s.startsWith("0001-")) return "never";
  const d = new Date(s);
  return isNaN(d) ? s : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function fmtAge(seconds) {
  if (seconds === undefined || seconds === null || isNaN(seconds)) return "";
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

// fmtDurationNS formats a Go time.Duration in nanoseconds.
export function fmtDurationNS(ns) {
  if (!ns) return "";
  const s = ns / 1e9;
  return s < 1 ? `${Math.round(ns / 1e6)} ms` : s < 120 ? `${s.toFixed(1)} s` : fmtAge(s);
}

export function num(n) { return n === undefined || n === null ? "" : Number(n).toLocaleString("en"); }

// busy disables a button while fn runs, so a click is not sent twice.
export async function busy(button, fn) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try { return await fn(); } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}
