// The REST side: the stored API key and authenticated fetches that surface the server's errors.

const KEY_STORAGE = "purpleflea.api_key";

export function loadKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return ""; // storage disabled (private mode): the key lives for this page only
  }
}

export function saveKey(key) {
  try {
    localStorage.setItem(KEY_STORAGE, key);
  } catch {
    /* see loadKey */
  }
}

/** An HTTP error with the server's code and message ({"error": {"code", "message"}}). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  get authProblem() {
    return this.status === 401 || this.status === 403;
  }
}

async function errorFrom(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && body.error && typeof body.error.message === "string") {
      return new ApiError(response.status, String(body.error.code || ""), body.error.message);
    }
  } catch {
    /* not JSON (e.g. a plain "Not Found" from the router) */
  }
  return new ApiError(response.status, "http_" + response.status, text.trim() || response.statusText);
}

/** GET a JSON API path with the key; throws ApiError for any non-2xx answer. */
export async function getJson(path, params = {}, key = loadKey()) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const url = query.toString() ? `${path}?${query}` : path;
  const response = await fetch(url, { headers: { "X-API-Key": key, Accept: "application/json" } });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

/** Register a new key for an account (POST /v1/keys); returns the server's answer. */
export async function createKey(account) {
  const response = await fetch("/v1/keys", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ account, name: "dashboard" }),
  });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}
