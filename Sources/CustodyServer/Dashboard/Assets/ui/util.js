// Small helpers shared by the dashboard's modules.

/** Stage → colour (the legend and every drawing use these). */
export const STAGE_COLOURS = {
  request_received: "#00bcd4", processing: "#4caf50", response_sent: "#26a69a", outbound_call: "#29b6f6",
  before_rpc: "#ff8c00", after_rpc: "#ffb74d", before_call: "#ab47bc", after_call: "#ce93d8",
  error: "#f44336", replay_error: "#f44336", replay_start: "#7e57c2", replay_span_start: "#9575cd",
  replay_span_end: "#b39ddb", replay_complete: "#7e57c2", replay_abort: "#e57373", sim_replay: "#ec407a", span: "#90caf9",
};
export const stageColour = (stage) => STAGE_COLOURS[stage] ?? "#90a4ae";

/** docs/api.md: an error span has stage error or replay_error, or a details.error. */
export const isError = (span) => span.stage === "error" || span.stage === "replay_error" || (span.details && span.details.error !== undefined);

/** Milliseconds since the epoch of an RFC 3339 timestamp (sub-millisecond digits kept). */
export function parseTime(text) {
  const ms = Date.parse(text);
  const fraction = /\.(\d+)/.exec(text);
  if (!fraction || fraction[1].length <= 3) return ms;
  return ms + Number("0." + fraction[1].slice(3)) ;
}

export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  return `${(ms / 60000).toFixed(1)} min`;
}

export function formatClock(ms, withMillis = true) {
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, "0");
  const base = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  return withMillis ? `${base}.${String(d.getMilliseconds()).padStart(3, "0")}` : base;
}

export const escapeHTML = (text) => String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

/** A canvas sized to its element for the device pixel ratio; returns the 2D context and size in CSS pixels. */
export function fitCanvas(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, canvas.clientWidth), height = Math.max(1, canvas.clientHeight);
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return { ctx, width, height };
}

/** Shows a message for a few seconds (errors from the API). */
export function toast(message) {
  const element = document.getElementById("toast");
  element.textContent = message;
  element.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (element.hidden = true), 5000);
}

/**
 * A virtualized list: only the rows in view (plus a margin) exist in the DOM, so 10,000 rows
 * scroll as smoothly as 10. `render(index, element)` fills a row element.
 */
export class VirtualList {
  constructor(container, rowHeight, render) {
    this.container = container;
    this.rowHeight = rowHeight;
    this.render = render;
    this.count = 0;
    this.spacer = document.createElement("div");
    this.spacer.className = "spacer";
    container.appendChild(this.spacer);
    this.rows = new Map();
    container.addEventListener("scroll", () => this.update());
    new ResizeObserver(() => this.update()).observe(container);
  }
  setCount(count) {
    this.count = count;
    this.spacer.style.height = `${count * this.rowHeight}px`;
    this.update(true);
  }
  refresh() { this.update(true); }
  update(force = false) {
    const top = this.container.scrollTop, height = this.container.clientHeight || 400;
    const first = Math.max(0, Math.floor(top / this.rowHeight) - 5);
    const last = Math.min(this.count - 1, Math.ceil((top + height) / this.rowHeight) + 5);
    for (const [index, element] of this.rows) {
      if (index < first || index > last) { element.remove(); this.rows.delete(index); }
    }
    for (let index = first; index <= last; index++) {
      let element = this.rows.get(index);
      const fresh = !element;
      if (fresh) {
        element = document.createElement("div");
        element.style.top = `${index * this.rowHeight}px`;
        this.container.appendChild(element);
        this.rows.set(index, element);
      }
      if (fresh || force) this.render(index, element);
    }
  }
  scrollTo(index) {
    const top = index * this.rowHeight;
    if (top < this.container.scrollTop || top > this.container.scrollTop + this.container.clientHeight - this.rowHeight) {
      this.container.scrollTop = Math.max(0, top - this.container.clientHeight / 2);
    }
  }
}

/** `text` shortened to `max` characters by cutting its middle: siblings that differ only at the
 *  end (`dashRootad9948…01`, `…02`) stay apart. */
export function middleEllipsis(text, max) {
  if (text.length <= max) return text;
  const keep = Math.max(2, max - 1);
  const head = Math.ceil(keep / 2), tail = keep - head;
  return text.slice(0, head) + "…" + text.slice(text.length - tail);
}

/** A round step (1, 2 or 5 times a power of ten) at least as large as `raw`: axis ticks. */
export function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-3)));
  for (const m of [1, 2, 5, 10]) if (raw <= m * power) return m * power;
  return 10 * power;
}
