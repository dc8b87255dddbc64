// The dashboard's API client: every call carries the stored bearer token, and every
// failure becomes an ApiError whose message is the API's own (its Status "message").
//
// The token lives in sessionStorage: it is an API credential (often the admin's), so it
// should not outlive the browser tab or be shared with other tabs and windows, as
// localStorage would; the cost is logging in again in a new tab.

export const API = "/apis/cnai.io/v1alpha1";
const TOKEN_KEY = "cnai.token";

export class ApiError extends Error {
  constructor(status, message, reason = "") {
    super(message);
    this.name = "ApiError";
    this.status = status; // HTTP status; 0 when the API could not be reached
    this.reason = reason; // the Status "reason", e.g. Unauthorized, NotFound
  }
}

export const auth = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  save: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

let onUnauthorized = () => {};

/** Called when the stored token is refused (revoked or expired): the app logs out. */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

async function errorOf(response) {
  let message = `${response.status} ${response.statusText}`.trim();
  let reason = "";
  try {
    const body = await response.json();
    if (body && typeof body.message === "string") {
      message = body.message;
      reason = body.reason || "";
    }
  } catch {
    // not JSON: keep the HTTP status line
  }
  return new ApiError(response.status, message, reason);
}

/** GET ``path`` (or ``method`` with a JSON ``body``); resolves to the Response once its
 * status is OK, else throws ApiError. */
export async function request(path, { token = auth.token(), signal, method = "GET", body } = {}) {
  let response;
  const headers = { Authorization: `Bearer ${token || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `cannot reach the API: ${err.message}`);
  }
  if (!response.ok) {
    const err = await errorOf(response);
    if (err.status === 401 && token === auth.token()) onUnauthorized(err);
    throw err;
  }
  return response;
}

export async function getJSON(path, options) {
  return (await request(path, options)).json();
}

/** ``/auth/v1/whoami`` for ``token``: who the API says it belongs to. */
export function whoami(token, signal) {
  return getJSON("/auth/v1/whoami", { token, signal });
}

/** The path of a kind's collection (all namespaces when ``namespace`` is empty), or
 * of one object when ``name`` is given, with the query parameters that are set. */
export function resourcePath(plural, { namespace, name, ...query } = {}) {
  let path = namespace ? `${API}/namespaces/${encodeURIComponent(namespace)}/${plural}` : `${API}/${plural}`;
  if (name) path += `/${encodeURIComponent(name)}`;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

export function podLogPath(namespace, pod, { follow = true, offset = 0 } = {}) {
  const base = resourcePath("pods", { namespace, name: pod });
  return `${base}/log?follow=${follow}&offset=${offset}`;
}

/** The chunks of a streamed response body, as Uint8Arrays. */
export async function* chunks(response) {
  const reader = response.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** A watch response's events (newline-delimited JSON), parsed one by one. */
export async function* ndjson(response) {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of chunks(response)) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) yield JSON.parse(line);
    }
  }
}
