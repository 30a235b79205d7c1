// The live feed: active traces, most recently active first, each with a status pill and its span
// count. Virtualized: thousands of traces cost only the rows in view.
import { VirtualList, escapeHTML, formatDuration } from "./util.js";

export class Feed {
  constructor(container, countElement, { onSelect }) {
    this.container = container;
    this.countElement = countElement;
    this.onSelect = onSelect;
    this.items = [];
    this.selected = null;
    this.filter = () => true;
    this.list = new VirtualList(container, 58, (index, element) => this.renderRow(index, element));
    // The list holds still under the pointer (or while a row has focus): rows do not move away
    // from a click. What arrived meanwhile shows when the pointer leaves.
    this.frozen = false;
    container.addEventListener("mouseenter", () => (this.frozen = true));
    container.addEventListener("mouseleave", () => { this.frozen = false; if (this.pending) this.update(this.pending); });
    container.addEventListener("keydown", (event) => {
      const index = this.items.findIndex((t) => t.id === this.selected);
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const next = this.items[Math.min(this.items.length - 1, Math.max(0, index + (event.key === "ArrowDown" ? 1 : -1)))];
        if (next) { this.onSelect(next.id); this.list.scrollTo(this.items.indexOf(next)); }
      }
    });
  }

  status(trace) {
    if (trace.errors > 0) return "error";
    return Date.now() - trace.seen < 4000 ? "running" : "complete";
  }

  /** Newest traces first (by start): a trace keeps its place as its spans arrive. */
  update(traces, { force = false } = {}) {
    if (this.frozen && !force) { this.pending = traces; return; }
    this.pending = null;
    this.items = [...traces.values()].filter(this.filter).sort((a, b) => b.start - a.start || (a.id < b.id ? -1 : 1));
    this.countElement.textContent = String(this.items.length);
    this.list.setCount(this.items.length);
  }

  renderRow(index, element) {
    const trace = this.items[index];
    if (!trace) { element.innerHTML = ""; return; }
    const status = this.status(trace);
    element.className = "feed-row" + (trace.id === this.selected ? " selected" : "");
    element.setAttribute("role", "option");
    element.setAttribute("aria-selected", String(trace.id === this.selected));
    element.dataset.trace = trace.id;
    element.dataset.sources = [...trace.sources].join(" ");
    element.innerHTML = `<div class="top"><span class="op">${escapeHTML(trace.root)}</span><span class="pill ${status}">${status}</span></div>
      <div class="bottom"><code>${escapeHTML(trace.id)}</code><span>${trace.spans} spans</span><span>${formatDuration(trace.end - trace.start)}</span></div>`;
    element.onclick = () => this.onSelect(trace.id);
  }

  select(id) {
    this.selected = id;
    this.list.refresh();
  }
}
