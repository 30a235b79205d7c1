// The selected trace: summary, its spans as an indented waterfall table (virtualized), a JSON
// inspector for a span's details, downloads and the Replay button.
import { VirtualList, escapeHTML, formatClock, formatDuration, stageColour, isError, parseTime } from "./util.js";
import { api } from "./api.js";

export class Details {
  constructor({ onReplay, onClose, onSpan }) {
    this.onReplay = onReplay;
    this.onClose = onClose;
    this.onSpan = onSpan;
    this.rows = [];
    this.selectedSeq = null;
    this.table = document.getElementById("span-table");
    this.list = new VirtualList(this.table, 24, (index, element) => this.renderRow(index, element));
    document.getElementById("details-replay").onclick = () => this.trace && this.onReplay(this.trace.trace_id);
    document.getElementById("details-close").onclick = () => this.onClose();
    this.table.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
      event.preventDefault();
      const index = Math.max(0, this.rows.findIndex((r) => r.span.seq === this.selectedSeq));
      const next = Math.min(this.rows.length - 1, Math.max(0, index + (event.key === "ArrowDown" ? 1 : -1)));
      this.inspect(this.rows[next]?.span);
      this.list.scrollTo(next);
    });
  }

  /** Shows a trace from GET /api/traces/{id}. Returns its spans prepared for the timeline. */
  show(trace) {
    this.trace = trace;
    const spans = trace.spans.map((s) => ({ ...s, t: parseTime(s.timestamp), d: typeof s.duration_ms === "number" ? s.duration_ms : 0, error: isError(s) }));
    // Depth from parent span ids, whatever their order.
    const byId = new Map(spans.filter((s) => s.span_id).map((s) => [s.span_id, s]));
    const depth = (s, seen = 0) => {
      const parent = s.parent_span_id && byId.get(s.parent_span_id);
      return parent && seen < 32 ? depth(parent, seen + 1) + 1 : 0;
    };
    this.rows = spans.map((span) => ({ span, depth: depth(span) }));
    const summary = trace.summary;
    document.getElementById("details-empty").hidden = true;
    document.getElementById("details-body").hidden = false;
    document.getElementById("details-trace-id").textContent = trace.trace_id;
    document.getElementById("details-range").textContent = `${formatClock(parseTime(summary.start))} → ${formatClock(parseTime(summary.end))}`;
    document.getElementById("details-duration").textContent = formatDuration(summary.duration_ms);
    document.getElementById("details-spans").textContent = String(summary.span_count);
    document.getElementById("details-errors").textContent = String(summary.error_count) + (summary.replay_of ? ` · replay of ${summary.replay_of.slice(0, 8)}…` : "");
    document.getElementById("download-csv").href = api.downloadURL(trace.trace_id, "csv");
    document.getElementById("download-json").href = api.downloadURL(trace.trace_id, "json");
    this.table.scrollTop = 0;
    this.list.setCount(this.rows.length);
    this.inspect(spans.find((s) => s.error) ?? spans[0]);
    return spans;
  }

  hide() {
    this.trace = null;
    document.getElementById("details-empty").hidden = false;
    document.getElementById("details-body").hidden = true;
  }

  renderRow(index, element) {
    const row = this.rows[index];
    if (!row) { element.innerHTML = ""; return; }
    const s = row.span;
    element.className = "span-row" + (s.error ? " error" : "") + (s.seq === this.selectedSeq ? " selected" : "");
    element.setAttribute("role", "row");
    element.dataset.seq = String(s.seq);
    element.innerHTML = `<span class="stage"><i style="background:${s.error ? "#f44336" : stageColour(s.stage)}"></i>${escapeHTML(s.stage)}</span>` +
      `<span style="padding-left:${Math.min(row.depth, 6) * 8}px" title="${escapeHTML(s.operation)}">${escapeHTML(s.operation)}</span>` +
      `<span>${escapeHTML(s.source)}</span><span class="num">${formatDuration(s.duration_ms)}</span><span class="num">${formatClock(s.t).slice(3)}</span>`;
    element.onclick = () => this.inspect(s);
  }

  inspect(span) {
    if (!span) return;
    this.selectedSeq = span.seq;
    this.list.refresh();
    document.getElementById("inspector-title").textContent = `${span.stage} · ${span.operation} · seq ${span.seq}`;
    const inspector = document.getElementById("json-inspector");
    inspector.innerHTML = "";
    const { t, d, error, ...plain } = span;
    inspector.appendChild(renderJSON(plain, "span", true));
    this.onSpan?.(span);
  }
}

/** A collapsible tree of a JSON value (objects and arrays fold; the top level and details open). */
function renderJSON(value, key, open) {
  if (value === null || typeof value !== "object") {
    const line = document.createElement("div");
    const kind = value === null || typeof value === "boolean" ? "b" : typeof value === "number" ? "n" : "s";
    line.innerHTML = `${key !== undefined ? `<span class="k">${escapeHTML(key)}</span>: ` : ""}<span class="${kind}">${escapeHTML(JSON.stringify(value))}</span>`;
    return line;
  }
  const details = document.createElement("details");
  details.open = open;
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  const summary = document.createElement("summary");
  summary.innerHTML = `<span class="k">${escapeHTML(key)}</span> ${Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`}`;
  details.appendChild(summary);
  for (const [k, v] of entries) details.appendChild(renderJSON(v, k, k === "details"));
  return details;
}
