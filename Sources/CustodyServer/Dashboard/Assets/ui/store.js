// What the dashboard holds: the newest spans (a bounded buffer: old spans fall out), the traces
// they belong to (bounded too), the values seen for the filters, and the counters behind the
// metrics. Everything is fed from /api/traces/active and then the live stream.
import { isError, parseTime } from "./util.js";

export const SPAN_LIMIT = 60000;
export const TRACE_LIMIT = 3000;
const SECONDS = 120;   // sparkline history
const MINUTES = 30;    // heatmap history
export const HISTOGRAM_EDGES = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, Infinity];

export class SpanStore {
  constructor() {
    this.spans = [];
    this.traces = new Map();
    this.sources = new Set();
    this.stages = new Set();
    this.operations = new Set();
    this.lastSeq = null;
    this.received = 0;
    this.perSecond = new Map();   // source → Float64Array(SECONDS) of counts, ring by epoch second
    this.perMinute = new Map();   // source → {count, latency}: Float64Array(MINUTES) each, ring by epoch minute
    this.histogram = new Array(HISTOGRAM_EDGES.length).fill(0);
    this.newestSecond = 0;
    this.newestMinute = 0;
  }

  /** Takes spans as the API returns them (with seq); returns the traces they touched. */
  add(spans) {
    const touched = new Set();
    for (const raw of spans) {
      if (this.lastSeq !== null && raw.seq <= this.lastSeq) continue;
      this.lastSeq = raw.seq;
      const span = raw;
      span.t = parseTime(span.timestamp);
      span.d = typeof span.duration_ms === "number" ? span.duration_ms : 0;
      span.error = isError(span);
      this.spans.push(span);
      this.received += 1;
      this.sources.add(span.source); this.stages.add(span.stage); this.operations.add(span.operation);
      this.count(span);
      let trace = this.traces.get(span.trace_id);
      if (!trace) {
        trace = { id: span.trace_id, start: span.t, end: span.t + span.d, spans: 0, errors: 0, sources: new Set(), stages: new Set(), operations: new Set(), root: span.operation, rootSource: span.source, seen: 0 };
        this.traces.set(span.trace_id, trace);
      }
      if (span.t < trace.start) { trace.start = span.t; trace.root = span.operation; trace.rootSource = span.source; }
      trace.end = Math.max(trace.end, span.t + span.d);
      trace.spans += 1;
      if (span.error) trace.errors += 1;
      trace.sources.add(span.source);
      trace.stages.add(span.stage);
      trace.operations.add(span.operation);
      trace.seen = Date.now();
      touched.add(trace);
    }
    if (this.spans.length > SPAN_LIMIT) this.spans.splice(0, this.spans.length - SPAN_LIMIT * 0.9);
    if (this.traces.size > TRACE_LIMIT) {
      const oldest = [...this.traces.values()].sort((a, b) => a.seen - b.seen).slice(0, this.traces.size - TRACE_LIMIT * 0.9);
      for (const trace of oldest) this.traces.delete(trace.id);
    }
    return touched;
  }

  count(span) {
    const now = Date.now();
    const second = Math.floor(now / 1000), minute = Math.floor(span.t / 60000);
    this.advance(second);
    let seconds = this.perSecond.get(span.source);
    if (!seconds) { seconds = new Float64Array(SECONDS); this.perSecond.set(span.source, seconds); }
    seconds[second % SECONDS] += 1;
    if (minute > Math.floor(now / 60000) - MINUTES && minute <= Math.floor(now / 60000)) {
      let cells = this.perMinute.get(span.source);
      if (!cells) { cells = { count: new Float64Array(MINUTES), latency: new Float64Array(MINUTES), minutes: new Float64Array(MINUTES) }; this.perMinute.set(span.source, cells); }
      const slot = minute % MINUTES;
      if (cells.minutes[slot] !== minute) { cells.minutes[slot] = minute; cells.count[slot] = 0; cells.latency[slot] = 0; }
      cells.count[slot] += 1;
      cells.latency[slot] += span.d;
    }
    if (typeof span.duration_ms === "number") {
      const bucket = HISTOGRAM_EDGES.findIndex((edge) => span.d < edge);
      this.histogram[bucket] += 1;
    }
  }

  /** Clears the per-second slots that have passed since the last count. */
  advance(second) {
    if (second <= this.newestSecond) return;
    const from = Math.max(this.newestSecond + 1, second - SECONDS + 1);
    for (const seconds of this.perSecond.values()) for (let s = from; s <= second; s++) seconds[s % SECONDS] = 0;
    this.newestSecond = second;
  }

  /** Spans per second of `source` over the last `n` whole seconds, oldest first. */
  series(source, n = 60) {
    const second = Math.floor(Date.now() / 1000);
    this.advance(second);
    const seconds = this.perSecond.get(source);
    const values = [];
    for (let s = second - n; s < second; s++) values.push(seconds ? seconds[((s % SECONDS) + SECONDS) % SECONDS] : 0);
    return values;
  }

  /** The heatmap's cells: for each source, the last MINUTES minutes' {count, avg}. */
  heat() {
    const current = Math.floor(Date.now() / 60000);
    const rows = [];
    for (const source of [...this.sources].sort()) {
      const cells = this.perMinute.get(source);
      const row = [];
      for (let m = current - MINUTES + 1; m <= current; m++) {
        const slot = ((m % MINUTES) + MINUTES) % MINUTES;
        const ok = cells && cells.minutes[slot] === m;
        const count = ok ? cells.count[slot] : 0;
        row.push({ minute: m, count, avg: count ? cells.latency[slot] / count : 0 });
      }
      rows.push({ source, row });
    }
    return rows;
  }
}
