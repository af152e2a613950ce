// The REST API from the page: JSON in and out, the CSRF token Django's session authentication
// asks for, and errors that say what happened (status, the server's detail, or "offline").

export class ApiError extends Error {
  constructor(status, body, message) {
    super(message);
    this.status = status; // 0: the request never got an answer (network error)
    this.body = body;
  }

  get offline() {
    return this.status === 0 || this.status >= 500 || this.status === 429;
  }
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function describe(body) {
  if (!body) return "";
  if (typeof body === "string") return body.slice(0, 300);
  if (body.detail) return String(body.detail);
  return Object.entries(body)
    .map(([key, value]) => `${key}: ${Array.isArray(value) ? value.join(" ") : JSON.stringify(value)}`)
    .join("; ");
}

/** fetch() of an API path; resolves to the parsed JSON (null for 204), rejects with ApiError. */
export async function api(method, path, body, { keepalive = false, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      keepalive,
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, null, `no answer from the server (${error.message})`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // not JSON (an HTML error page): keep the text
  }
  if (!response.ok) {
    throw new ApiError(response.status, data, `${response.status}: ${describe(data) || response.statusText}`);
  }
  return data;
}

/** Every row of a paginated list endpoint. */
export async function listAll(path) {
  const rows = [];
  let url = `${path}${path.includes("?") ? "&" : "?"}limit=500`;
  while (url) {
    const page = await api("GET", url);
    if (Array.isArray(page)) return page;
    rows.push(...page.results);
    url = page.next ? new URL(page.next, location.href).pathname + new URL(page.next, location.href).search : null;
  }
  return rows;
}
