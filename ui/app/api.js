// The API client: same origin as the UI, bearer token from auth.js, RFC 9457 problems as errors.

import { getToken, signOut } from "./auth.js";

export class ApiError extends Error {
  constructor(status, problem) {
    const fields = (problem?.errors || []).map((e) => `${e.field}: ${e.message}`).join("; ");
    const detail = problem?.detail || problem?.title || `HTTP ${status}`;
    super(fields && !detail.includes(fields) ? `${detail} (${fields})` : detail);
    this.status = status;
    this.problem = problem;
  }

  /** The message of one offending field, for inline validation. */
  fieldMessage(name) {
    return (this.problem?.errors || []).find((e) => e.field === name)?.message;
  }
}

/** `api("/v1/leads", {method, body, signal})` → parsed JSON (null for 204). */
export async function api(path, { method = "GET", body, signal, headers = {} } = {}) {
  const token = getToken();
  const init = {
    method,
    signal,
    cache: "no-store",
    headers: { Accept: "application/json", ...headers },
  };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 200) };
    }
  }
  if (response.status === 401 && token && getToken() === token) signOut(data?.detail || "Your session has ended; sign in again.");
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** A query string from an object, leaving out empty values: `?a=1&b=x` or "". */
export function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value != null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** True for the error of an aborted request (a view was left or a filter changed). */
export const isAbort = (error) => error?.name === "AbortError";
