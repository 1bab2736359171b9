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

// errorOf reads the API's error body, {"error": {"code", "message",
// "field"}}; any other answer (a proxy's page) gives its text.
async function errorOf(res) {
  const text = await res.text();
  try {
    const e = JSON.parse(text).error;
    if (e && e.message) return new APIError(res.status, e.message, e.field, e.code);
  } catch { /* not the API's JSON */ }
  return new APIError(res.status, text.trim().slice(0, 300) || res.statusText || `HTTP ${res.status}`);
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
  if (!res.ok) {
    const err = await errorOf(res);
    // A token revoked while the page is open: the app goes back to the
    // login page with the API's message (logging in checks /whoami itself).
    if (res.status === 401 && path !== "/whoami") window.dispatchEvent(new CustomEvent("cohortsync:unauthorized", { detail: err }));
    throw err;
  }
  if (opts.raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get("Content-Type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export const get = (path, opts) => call("GET", path, undefined, opts);
export const post = (path, body) => call("POST", path, body === undefined ? {} : body);

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
