// The selected trace: summary, its spans as an indented waterfall table (virtualized), a JSON
// inspector for a span's details, downloads, the Replay button and the critical path (its spans
// marked in the table, its time by source above it).
import { VirtualList, escapeHTML, formatClock, formatDuration, stageColour, isError, parseTime, middleEllipsis } from "./util.js";
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
    // Operation names are cut in the middle to the column's width (the whole name on hover).
    window.addEventListener("resize", () => { this.operationChars = null; this.list.refresh(); });
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
    this.setCriticalPath(null);
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

  /** Marks the spans of a critical path (GET /api/traces/{id}/critical-path), or clears them. */
  setCriticalPath(path) {
    this.onPath = new Map((path?.path ?? []).map((step) => [step.seq, step.self_ms]));
    const summary = document.getElementById("critical-summary");
    summary.hidden = !path;
    if (path) {
      const total = Math.max(path.duration_ms, 1e-9);
      const parts = Object.entries(path.by_source).sort((a, b) => b[1] - a[1])
        .map(([source, ms]) => `<span class="part"><b>${escapeHTML(source)}</b> ${formatDuration(ms)} (${Math.round(ms / total * 100)}%)</span>`);
      if (path.gap_ms > 0) parts.push(`<span class="part"><b>no span</b> ${formatDuration(path.gap_ms)} (${Math.round(path.gap_ms / total * 100)}%)</span>`);
      summary.innerHTML = `<span class="muted">Critical path: ${path.path.length} spans · by source</span> ${parts.join(" ")}`;
    }
    this.list.refresh();
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
    const onPath = this.onPath?.get(s.seq);
    element.className = "span-row" + (s.error ? " error" : "") + (s.seq === this.selectedSeq ? " selected" : "") + (onPath !== undefined ? " on-path" : "");
    element.setAttribute("role", "row");
    element.dataset.seq = String(s.seq);
    element.innerHTML = `<span class="stage"><i style="background:${s.error ? "#f44336" : stageColour(s.stage)}"></i>${escapeHTML(s.stage)}</span>` +
      `<span style="padding-left:${Math.min(row.depth, 6) * 8}px" title="${escapeHTML(s.operation)}${onPath !== undefined ? ` — ${formatDuration(onPath)} on the critical path` : ""}">${onPath !== undefined ? "◆ " : ""}${escapeHTML(middleEllipsis(s.operation, this.operationWidth(row.depth) - (onPath !== undefined ? 2 : 0)))}</span>` +
      `<span>${escapeHTML(s.source)}</span><span class="num">${formatDuration(s.duration_ms)}</span><span class="num">${formatClock(s.t).slice(3)}</span>`;
    element.onclick = () => this.inspect(s);
  }

  /** How many characters of an operation name fit its column at this depth (measured once per size). */
  operationWidth(depth) {
    if (!this.operationChars) {
      const head = document.querySelector("#details .table-head span:nth-child(2)");
      this.operationChars = Math.max(8, Math.floor((head?.clientWidth || 160) / 7));
    }
    return Math.max(6, this.operationChars - Math.ceil(Math.min(depth, 6) * 8 / 7));
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
