// The page's only door to the server: same-origin fetch with the login cookie.
// Every request carries X-Requested-By, which the server requires (with the cookie) for changes:
// a page from another origin cannot add it without a CORS preflight, and none is granted.

export const MODE = document.querySelector('meta[name="nasctl-mode"]')?.content || "daemon";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

const listeners = new Set();

/** Called with (ok, error) after every request: the live indicator and the banner listen. */
export function onRequestDone(fn) {
  listeners.add(fn);
}

function notify(ok, error) {
  for (const fn of listeners) fn(ok, error);
}

async function request(path, { method = "GET", body, signal, text = false } = {}) {
  const headers = { "X-Requested-By": "nasctl-dashboard" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    const error = new ApiError(0, "the server does not answer (stopped?)");
    notify(false, error);
    throw error;
  }
  const raw = await response.text();
  if (!response.ok) {
    let detail = raw;
    try {
      detail = JSON.parse(raw).detail || raw;
    } catch {
      /* plain text */
    }
    const error = new ApiError(response.status, detail);
    notify(response.status < 500 && response.status !== 401, error);
    throw error;
  }
  notify(true, null);
  if (text) return raw;
  return raw ? JSON.parse(raw) : null;
}

export const api = {
  get: (path, options) => request(path, options),
  text: (path, options) => request(path, { ...options, text: true }),
  post: (path, body) => request(path, { method: "POST", body }),
  patch: (path, body) => request(path, { method: "PATCH", body }),
  del: (path) => request(path, { method: "DELETE" }),
};

/** "?a=1&b=x" from an object, leaving out null/undefined/"" values. */
export function query(params) {
  const parts = Object.entries(params)
    .filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return parts.length ? `?${parts.join("&")}` : "";
}
