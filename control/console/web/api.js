// The admin API client: every call carries the Bearer token typed on the
// login page. The token lives in sessionStorage (this tab only, gone when it
// closes), never in a URL or a cookie.

const tokenKey = "cohortsync.token";
export const base = "/api/v1";

export function token() { return sessionStorage.getItem(tokenKey) || ""; }
export function setToken(t) { sessionStorage.setItem(tokenKey, t); }
export function clearToken() { sessionStorage.removeItem(tokenKey); }

// APIError is a failed call: the HTTP status, the API's message and the
// field it names (for a 400), as the API's error body says.
export class APIError extends Error {
  constructor(status, message, field, code) {
    super(message);
    this.status = status;
    this.field = field || "";
    this.code = code || "";
  }
}

// errorOf reads an error body: {"error": {"message", "field", "code"}} or
// {"error": "...", "field": "..."} or {"message": ...}; plain text otherwise.
async function errorOf(res) {
  const text = await res.text();
  let message = text.trim() || res.statusText || `HTTP ${res.status}`;
  let field = "", code = "";
  try {
    const body = JSON.parse(text);
    const e = body.error && typeof body.error === "object" ? body.error : body;
    message = e.message || (typeof body.error === "string" ? body.error : "") || e.detail || e.title || message;
    field = e.field || body.field || "";
    code = e.code || "";
  } catch { /* not JSON: the text is the message */ }
  return new APIError(res.status, message, field, code);
}

// call sends one request; body (an object) is sent as JSON. It returns the
// decoded JSON, the text of a non-JSON answer, or null for 204.
export async function call(method, path, body, opts = {}) {
  const headers = { Authorization: `Bearer ${token()}`, Accept: opts.accept || "application/json" };
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(base + path, init);
  } catch (e) {
    throw new APIError(0, `the API could not be reached: ${e.message}`);
  }
  if (!res.ok) throw await errorOf(res);
  if (opts.raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get("Content-Type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export const get = (path, opts) => call("GET", path, undefined, opts);
export const post = (path, body) => call("POST", path, body === undefined ? {} : body);

// items returns a list answer's entries, whichever envelope the list has.
export function items(body, ...names) {
  if (Array.isArray(body)) return body;
  if (!body || typeof body !== "object") return [];
  for (const n of [...names, "items", "data", "results"]) {
    if (Array.isArray(body[n])) return body[n];
  }
  return [];
}

// nextCursor returns a page's cursor for the next one, "" at the end.
export function nextCursor(body) {
  if (!body || typeof body !== "object") return "";
  return body.next_cursor || body.next || body.cursor || "";
}

// query builds "?a=b&c=d" from the set values of params.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const enc = encodeURIComponent;

// download fetches path with the token and saves the answer as name
// through a temporary object URL (a plain link could not carry the token).
export async function download(path, name) {
  const res = await call("GET", path, undefined, { raw: true, accept: "text/csv" });
  const blob = await res.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
