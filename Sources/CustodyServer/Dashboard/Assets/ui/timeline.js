// The waterfall: x = time, one lane per source (overlapping spans stack in sub-rows), bars
// coloured by stage, error spans glowing red. Live, the window follows now and new spans slide
// in from the right; wheel / drag / buttons zoom and pan (which stops following). Drawn on a
// canvas, at most once per animation frame.
import { fitCanvas, formatClock, formatDuration, niceStep, stageColour, escapeHTML } from "./util.js";

const LABEL = 132, AXIS = 22, ROW = 14, GAP = 3, MAX_ROWS = 8;

export class Timeline {
  constructor(canvas, tooltip, { onSelect, onFollowChange }) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.onSelect = onSelect;
    this.onFollowChange = onFollowChange;
    this.spans = [];
    this.filter = () => true;
    this.mode = "live";
    this.windowMs = 20000;
    this.follow = true;
    this.view = { start: Date.now() - this.windowMs, end: Date.now() };
    this.paused = false;
    this.selectedTrace = null;
        this.dirty = true;
    this.bind();
    new ResizeObserver(() => this.invalidate()).observe(canvas);
    const loop = () => { this.frame(); requestAnimationFrame(loop); };
    requestAnimationFrame(loop);
  }

  /** Live: the store's spans (a live reference). */
  showLive(spans) {
    this.mode = "live"; this.spans = spans; this.lastError = null; this.setFollow(true); this.invalidate();
  }

  /** One trace's spans, fitted to the view. */
  showTrace(spans) {
    this.critical = null; this.lastError = null;
    this.mode = "trace"; this.spans = spans; this.setFollow(false); this.fit();
  }

  /** Highlights a critical path on the trace shown (its sections are from the trace's start), or clears it. */
  setCriticalPath(path) {
    if (!path || this.mode !== "trace") { this.critical = null; this.invalidate(); return; }
    let origin = Infinity;
    for (const s of this.spans) origin = Math.min(origin, s.t);
    this.critical = { origin, sections: new Map(path.path.map((step) => [step.seq, step.sections])) };
    this.invalidate();
  }

  setFollow(follow) {
    if (this.follow === follow) return;
    this.follow = follow;
    this.onFollowChange?.(follow);
    this.invalidate();
  }

  invalidate() { this.dirty = true; }

  fit() {
    if (this.mode === "live") { this.windowMs = 20000; this.setFollow(true); this.invalidate(); return; }
    const visible = this.spans.filter(this.filter);
    if (!visible.length) return;
    let start = Infinity, end = -Infinity;
    for (const s of visible) { start = Math.min(start, s.t); end = Math.max(end, s.t + s.d); }
    const pad = Math.max((end - start) * 0.04, 1);
    this.view = { start: start - pad, end: end + pad };
    this.invalidate();
  }

  zoom(factor, atX) {
    const { width } = this.canvas.getBoundingClientRect();
    const span = this.view.end - this.view.start;
    const ratio = atX === undefined ? 0.5 : Math.min(1, Math.max(0, (atX - LABEL) / Math.max(1, width - LABEL)));
    const at = this.view.start + span * ratio;
    const next = Math.min(Math.max(span * factor, 0.05), 6 * 3600 * 1000);
    if (this.mode === "live" && this.follow && atX === undefined) { this.windowMs = next; this.invalidate(); return; }
    this.view = { start: at - next * ratio, end: at + next * (1 - ratio) };
    if (this.mode === "live") this.setFollow(false);
    this.invalidate();
  }

  /** Flashes the next error span after the last one shown (wrapping), and returns it; the view
   *  moves only when that span is not wholly in it (a trace stays fitted when its errors show). */
  nextError() {
    const errors = this.spans.filter((s) => s.error && this.filter(s)).sort((a, b) => a.t - b.t || a.seq - b.seq);
    if (!errors.length) return null;
    const last = this.lastError;
    const after = last ? errors.findIndex((s) => s.t > last.t || (s.t === last.t && s.seq > last.seq)) : 0;
    const target = errors[after === -1 ? 0 : after];
    this.lastError = target;
    if (target.t < this.view.start || target.t + target.d > this.view.end) {
      const width = this.view.end - this.view.start;
      this.view = { start: target.t - width / 2, end: target.t + width / 2 };
      if (this.mode === "live") this.setFollow(false);
    }
    this.flash = { span: target, until: performance.now() + 1500 };
    this.invalidate();
    return target;
  }

  bind() {
    const canvas = this.canvas;
    canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      const x = event.clientX - canvas.getBoundingClientRect().left;
      if (event.shiftKey || Math.abs(event.deltaX) > Math.abs(event.deltaY)) {
        this.pan(((event.deltaX || event.deltaY) / canvas.clientWidth) * (this.view.end - this.view.start));
      } else {
        this.zoom(event.deltaY > 0 ? 1.2 : 1 / 1.2, x);
      }
    }, { passive: false });
    let drag = null;
    canvas.addEventListener("mousedown", (event) => { drag = { x: event.clientX, moved: false }; canvas.classList.add("dragging"); });
    window.addEventListener("mouseup", () => { drag = null; canvas.classList.remove("dragging"); });
    window.addEventListener("mousemove", (event) => {
      if (!drag) return;
      const dx = event.clientX - drag.x;
      if (Math.abs(dx) > 2) drag.moved = true;
      drag.x = event.clientX;
      this.pan((-dx / Math.max(1, canvas.clientWidth - LABEL)) * (this.view.end - this.view.start));
    });
    canvas.addEventListener("mousemove", (event) => this.hover(event));
    canvas.addEventListener("mouseleave", () => (this.tooltip.hidden = true));
    canvas.addEventListener("click", (event) => {
      const hit = this.hitAt(event);
      if (hit) this.onSelect?.(hit.span);
    });
  }

  pan(deltaMs) {
    if (this.mode === "live" && this.follow) {
      const now = Date.now();
      this.view = { start: now - this.windowMs, end: now };
      this.setFollow(false);
    }
    this.view = { start: this.view.start + deltaMs, end: this.view.end + deltaMs };
    this.invalidate();
  }

  hitAt(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left, y = event.clientY - rect.top;
    const placed = this.placed ?? [];
    for (let i = placed.length - 1; i >= 0; i--) {
      const h = placed[i];
      if (x >= h.x - 1 && x <= h.x + h.w + 1 && y >= h.top && y <= h.top + this.barH) return h;
    }
    return null;
  }

  hover(event) {
    const hit = this.hitAt(event);
    if (!hit) { this.tooltip.hidden = true; return; }
    const s = hit.span;
    this.tooltip.innerHTML = `<b>${escapeHTML(s.operation)}</b><br>${escapeHTML(s.source)} · ${escapeHTML(s.stage)}<br>` +
      `${formatDuration(s.duration_ms)} · ${escapeHTML(s.timestamp)}<br><span class="muted">${escapeHTML(s.trace_id)}</span>` +
      (s.error ? `<br><span style="color:#ff6b60">error${s.details?.error ? ": " + escapeHTML(String(JSON.stringify(s.details.error)).slice(0, 120)) : ""}</span>` : "");
    const rect = this.canvas.getBoundingClientRect();
    const x = event.clientX - rect.left, y = event.clientY - rect.top;
    this.tooltip.hidden = false;
    this.tooltip.style.left = `${Math.min(x + 14, rect.width - 300)}px`;
    this.tooltip.style.top = `${Math.min(y + 14, rect.height - 90)}px`;
  }

  frame() {
    if (this.paused || this.covered) return;
    const flashing = this.flash && performance.now() < this.flash.until;
    const now = performance.now();
    if (!this.dirty && !(this.mode === "live" && this.follow) && !flashing) return;
    // Sliding with the clock alone: 30 frames a second are enough.
    if (!this.dirty && now - (this.lastDraw ?? 0) < 33) return;
    this.lastDraw = now;
    this.dirty = false;
    if (this.mode === "live" && this.follow) {
      const now = Date.now();
      this.view = { start: now - this.windowMs, end: now + this.windowMs * 0.02 };
    }
    this.draw();
  }

  draw() {
    const { ctx, width, height } = fitCanvas(this.canvas);
    const { start, end } = this.view;
    const scale = (width - LABEL - 8) / Math.max(end - start, 1e-6);
    ctx.clearRect(0, 0, width, height);
    // Visible spans, in time order.
    const visible = [];
    if (this.mode === "live") {
      // The buffer is in arrival order, close to time order: walk back from the newest and stop
      // once a long run of spans has ended before the view.
      let before = 0;
      for (let i = this.spans.length - 1; i >= 0 && before < 2000; i--) {
        const s = this.spans[i];
        if (s.t + s.d < start) { before++; continue; }
        before = 0;
        if (s.t <= end && this.filter(s)) visible.push(s);
      }
    } else {
      for (const s of this.spans) if (s.t <= end && s.t + s.d >= start && this.filter(s)) visible.push(s);
    }
    visible.sort((a, b) => a.t - b.t);
    const sources = [...new Set(visible.map((s) => s.source))].sort();
    // Sub-rows per lane: a bar goes into the first row free at its start (in pixels).
    const rowEnds = new Map(sources.map((s) => [s, []]));
    const placed = visible.map((s) => {
      const x = LABEL + (s.t - start) * scale, w = Math.max(2, s.d * scale);
      const ends = rowEnds.get(s.source);
      let row = ends.findIndex((e) => e <= x);
      if (row === -1) { row = Math.min(ends.length, MAX_ROWS - 1); }
      ends[row] = Math.max(ends[row] ?? 0, x + w + 1);
      return { s, x, w, row };
    });
    // Every lane in view: rows shrink (down to 3 px) when there are many.
    const totalRows = sources.reduce((n, source) => n + Math.max(1, rowEnds.get(source).length), 0);
    const pitch = Math.max(3, Math.min(ROW + GAP, (height - AXIS - 10 - sources.length * 10) / Math.max(1, totalRows)));
    const barH = pitch > 8 ? pitch - GAP : Math.max(2, pitch - 1);
    this.pitch = pitch;
    const laneTop = new Map();
    let y = AXIS + 6;
    for (const source of sources) { laneTop.set(source, y); y += Math.max(1, rowEnds.get(source).length) * pitch + 10; }
    // Grid and axis.
    ctx.font = "11px Inter, system-ui, sans-serif";
    const step = niceStep((end - start) / Math.max(2, (width - LABEL) / 110));
    ctx.strokeStyle = "rgba(0,188,212,0.14)"; ctx.fillStyle = "#8a93a6"; ctx.lineWidth = 1;
    for (let t = Math.ceil(start / step) * step; t <= end; t += step) {
      const x = Math.round(LABEL + (t - start) * scale) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, AXIS); ctx.lineTo(x, height); ctx.stroke();
      ctx.fillText(step < 1000 ? formatClock(t, true).slice(3) : formatClock(t, false), x + 3, 14);
    }
    if (this.mode === "live") {
      const x = LABEL + (Date.now() - start) * scale;
      ctx.strokeStyle = "rgba(255,140,0,0.6)"; ctx.beginPath(); ctx.moveTo(x, AXIS); ctx.lineTo(x, height); ctx.stroke();
    }
    // Lanes.
    for (const source of sources) {
      const top = laneTop.get(source), rows = Math.max(1, rowEnds.get(source).length);
      ctx.fillStyle = "rgba(255,255,255,0.025)";
      ctx.fillRect(0, top - 4, width, rows * pitch + 6);
      ctx.fillStyle = "#c9ced9"; ctx.font = "12px Inter, system-ui, sans-serif";
      ctx.fillText(source.length > 18 ? source.slice(0, 17) + "…" : source, 10, top + 11);
    }
    // Bars.
    ctx.save();
    ctx.beginPath(); ctx.rect(LABEL, AXIS, width - LABEL, height - AXIS); ctx.clip();
    const flash = this.flash && performance.now() < this.flash.until ? this.flash.span : null;
    // Bars are drawn grouped by colour (one fill style per colour and opacity, then plain
    // fillRects): with tens of thousands of bars, switching styles per bar cost most of a frame.
    // Within a row, touching bars of one colour are merged into one rectangle (at a live zoom,
    // most bars are a pixel or two wide). Errors are drawn last, on top, with their glow.
    const batches = new Map();
    const glowing = [], labels = [];
    const open = new Map();   // row → the rectangle being extended
    const close = (rect) => {
      let rects = batches.get(rect.key);
      if (!rects) { rects = []; batches.set(rect.key, rects); }
      rects.push(rect.x, rect.top, rect.end - rect.x);
    };
    for (const item of placed) {
      const { s, x, w, row } = item;
      const top = laneTop.get(s.source) + row * pitch;
      item.top = top;
      if (s.error || s === flash) {
        glowing.push(item);
        if (w > 60 && barH >= 11) labels.push(item);
        continue;
      }
      const dim = (this.selectedTrace && s.trace_id !== this.selectedTrace && this.mode === "live")
        || (this.critical && this.mode === "trace" && !this.critical.sections.has(s.seq));
      const key = (dim ? "d" : "") + stageColour(s.stage);
      const rowKey = top;
      const current = open.get(rowKey);
      if (current && current.key === key && x <= current.end + 0.5) {
        current.end = Math.max(current.end, x + w);
      } else {
        if (current) close(current);
        open.set(rowKey, { key, x, top, end: x + w });
      }
      if (w > 60 && barH >= 11) labels.push(item);
    }
    for (const rect of open.values()) close(rect);
    this.placed = placed;
    this.barH = Math.max(barH, 3);
    for (const [key, rects] of batches) {
      ctx.globalAlpha = key.startsWith("d") ? 0.35 : 1;
      ctx.fillStyle = key.startsWith("d") ? key.slice(1) : key;
      for (let i = 0; i < rects.length; i += 3) ctx.fillRect(rects[i], rects[i + 1], rects[i + 2], barH);
    }
    ctx.globalAlpha = 1;
    ctx.fillStyle = "#f44336";
    ctx.shadowColor = "#f44336";
    for (const { s, x, w, top } of glowing) {
      ctx.shadowBlur = s === flash ? 16 : 8;
      ctx.fillRect(x, top, w, barH);
    }
    ctx.shadowBlur = 0;
    if (this.critical && this.mode === "trace") {
      // The path: each span's sections on it, outlined in amber across its bar.
      ctx.strokeStyle = "#ffc107"; ctx.lineWidth = 2;
      for (const { s, top } of placed) {
        const sections = this.critical.sections.get(s.seq);
        if (!sections) continue;
        for (const [from, to] of sections) {
          const x = LABEL + (this.critical.origin + from - start) * scale;
          ctx.strokeRect(x + 1, top + 1, Math.max(2, (to - from) * scale) - 2, Math.max(barH - 2, 1));
        }
      }
    }
    ctx.fillStyle = "#0b0c10"; ctx.font = "10px Inter, system-ui, sans-serif";
    for (const { s, x, w, top } of labels) ctx.fillText(s.operation.slice(0, Math.floor(w / 6)), x + 4, top + 10);
    ctx.restore();
    ctx.globalAlpha = 1;
    if (!visible.length) {
      ctx.fillStyle = "#8a93a6"; ctx.font = "13px Inter, system-ui, sans-serif";
      ctx.fillText(this.mode === "live" ? "Waiting for spans…" : "No spans match the filters.", LABEL + 12, AXIS + 30);
    }
    this.visibleCount = visible.length;
  }
}
