// JSON calls to the dashboard's own API. Every state-changing call carries the CSRF token in a header.

let csrfToken = "";
let onSessionLost = () => {};

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `request failed (HTTP ${status})`);
    this.status = status;
    this.code = error.code || "";
    this.fields = error.fields || [];
  }
}

export function setCsrfToken(token) {
  csrfToken = token || "";
}

// Called when the server says the session is gone (401), so the page can show the login form.
export function whenSessionLost(callback) {
  onSessionLost = callback;
}

async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRF-Token"] = csrfToken;
  }
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && path !== "/api/login") {
      onSessionLost(error);
    }
    throw error;
  }
  return data;
}

export const api = {
  get: (path) => request("GET", path),
  post: (path, body) => request("POST", path, body),
  delete: (path) => request("DELETE", path),
};
