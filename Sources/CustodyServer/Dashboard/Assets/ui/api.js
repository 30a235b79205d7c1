// The API of docs/api.md, and nothing else. A token (role operator or admin) may be given in the page's
// fragment (#token=…): it is sent as a bearer token, and to the live stream as access_token.

const token = new URLSearchParams(location.hash.slice(1)).get("token");

export class APIError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function call(method, path, body) {
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const json = await response.json().catch(() => ({}));
  if (!response.ok || json.ok === false) {
    throw new APIError(response.status, json.error?.code ?? "http_" + response.status, json.error?.message ?? response.statusText);
  }
  return json.data;
}

const path = (id) => encodeURIComponent(id);

export const api = {
  active: (limit = 2000) => call("GET", `/api/traces/active?limit=${limit}`),
  trace: (id) => call("GET", `/api/traces/${path(id)}`),
  verification: (id) => call("GET", `/api/traces/${path(id)}/verification`),
  search: (q) => call("GET", `/api/traces?limit=50&q=${encodeURIComponent(q)}`),
  replay: (id, mode, speed) => call("POST", `/api/traces/replay/${path(id)}`, { mode, speed }),
  stats: () => call("GET", "/api/admin/stats"),
  replays: (limit = 100) => call("GET", `/api/replays?limit=${limit}`),
  compare: (a, b) => call("GET", `/api/traces/${path(a)}/compare/${path(b)}`),
  graph: (since, until) => call("GET", `/api/graph?since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}`),
  queryTraces: (q, since, limit = 50) => call("GET", `/api/traces?limit=${limit}&q=${encodeURIComponent(q)}&since=${encodeURIComponent(since)}`),
  metrics: (q, since, until) =>
    call("GET", `/api/metrics/query?q=${encodeURIComponent(q)}&since=${encodeURIComponent(since)}&until=${encodeURIComponent(until)}`),
  criticalPath: (id) => call("GET", `/api/traces/${path(id)}/critical-path`),
  downloadURL: (id, format) => `/api/traces/${path(id)}?format=${format}`,
  liveURL(sinceSeq) {
    const url = new URL("/api/traces/live", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("batch", "1");
    if (sinceSeq !== null && sinceSeq !== undefined) url.searchParams.set("since_seq", String(sinceSeq));
    if (token) url.searchParams.set("access_token", token);
    return url.toString();
  },
};
