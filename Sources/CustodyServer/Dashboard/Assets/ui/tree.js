// The selected trace as a span tree (a Jaeger-style gantt: one row per span, nested by parent,
// collapsible) and as a flame graph (siblings with the same source and operation merged into one
// frame, each frame as wide as its time). Both are drawn on one canvas that stays in view while a
// spacer scrolls under it: only the rows (or frame levels) in view are drawn, so 100,000 spans cost
// a tree built once and a few dozen rows per frame.
import { escapeHTML, fitCanvas, formatDuration, niceStep, stageColour } from "./util.js";

const ROW = 20, AXIS = 24, INDENT = 12, LEVEL = 20;

/** A trace's spans as a tree: parents from parent_span_id (a missing or cyclic parent makes a
 *  root), children in time order, pre-order with depth and subtree size. */
export function buildSpanTree(spans) {
  const n = spans.length;
  const index = Array.from({ length: n }, (_, i) => i).sort((a, b) => spans[a].t - spans[b].t || spans[a].seq - spans[b].seq);
  const sorted = index.map((i) => spans[i]);
  const byId = new Map();
  sorted.forEach((s, i) => { if (s.span_id && !byId.has(s.span_id)) byId.set(s.span_id, i); });
  const parent = new Int32Array(n).fill(-1);
  const children = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++) {
    const p = sorted[i].parent_span_id ? byId.get(sorted[i].parent_span_id) : undefined;
    if (p !== undefined && p !== i) { parent[i] = p; children[p].push(i); }
  }
  const order = new Int32Array(n), depth = new Int32Array(n), size = new Int32Array(n);
  const visited = new Uint8Array(n);
  let written = 0;
  const walk = (root) => {
    const stack = [root];
    depth[root] = 0;
    while (stack.length) {
      const node = stack.pop();
      visited[node] = 1;
      order[written++] = node;
      const kids = children[node];
      for (let k = kids.length - 1; k >= 0; k--) {
        const child = kids[k];
        if (visited[child]) continue;
        depth[child] = depth[node] + 1;
        stack.push(child);
      }
    }
  };
  for (let i = 0; i < n; i++) if (parent[i] === -1) walk(i);
  // What a cycle of parent links left unreached: its earliest span becomes a root.
  for (let i = 0; i < n; i++) {
    if (visited[i]) continue;
    if (parent[i] !== -1) children[parent[i]] = children[parent[i]].filter((c) => c !== i);
    parent[i] = -1;
    walk(i);
  }
  for (let k = n - 1; k >= 0; k--) {
    const node = order[k];
    size[node] += 1;
    if (parent[node] !== -1) size[parent[node]] += size[node];
  }
  let start = Infinity, end = -Infinity, maxDepth = 0;
  for (let i = 0; i < n; i++) {
    start = Math.min(start, sorted[i].t);
    end = Math.max(end, sorted[i].t + sorted[i].d);
    maxDepth = Math.max(maxDepth, depth[i]);
  }
  return { spans: sorted, parent, children, order, depth, size, start, end, maxDepth };
}

/** The flame graph of a span tree: from the roots down, the children of the spans of a frame
 *  grouped by source and operation. A frame is as wide as the larger of its spans' time and its
 *  children's width, so children always fit under their frame; self is what is left. */
export function buildFlame(tree) {
  const { spans, children, parent } = tree;
  const frames = [];
  const make = (members, depth, up) => {
    const first = spans[members[0]];
    const frame = { source: first.source, operation: first.operation, stage: first.stage, members, depth, parent: up, kids: [], own: 0, errors: 0, value: 0, x: 0 };
    for (const m of members) { frame.own += spans[m].d; if (spans[m].error) frame.errors++; }
    frames.push(frame);
    return frame;
  };
  const group = (indices) => {
    const groups = new Map();
    for (const i of indices) {
      const key = spans[i].source + "\u0000" + spans[i].operation;
      let members = groups.get(key);
      if (!members) { members = []; groups.set(key, members); }
      members.push(i);
    }
    return [...groups.values()];
  };
  const roots = [];
  for (let i = 0; i < spans.length; i++) if (parent[i] === -1) roots.push(i);
  const root = { source: "", operation: "trace", stage: "", members: [], depth: -1, parent: null, kids: [], own: 0, errors: 0, value: 0, x: 0 };
  const stack = [];
  for (const members of group(roots)) { const f = make(members, 0, root); root.kids.push(f); stack.push(f); }
  while (stack.length) {
    const frame = stack.pop();
    const below = [];
    for (const m of frame.members) for (const c of children[m]) below.push(c);
    for (const members of group(below)) { const f = make(members, frame.depth + 1, frame); frame.kids.push(f); stack.push(f); }
  }
  // Widths bottom-up (every frame was made after its parent), then places top-down.
  for (let k = frames.length - 1; k >= 0; k--) {
    const f = frames[k];
    let sum = 0;
    for (const kid of f.kids) sum += kid.value;
    f.value = Math.max(f.own, sum, 1e-6);
    f.self = f.value - sum;
  }
  root.value = root.kids.reduce((sum, f) => sum + f.value, 0) || 1e-6;
  root.x = 0;
  const place = [root];
  let maxDepth = 0;
  while (place.length) {
    const f = place.pop();
    let x = f.x;
    for (const kid of f.kids) { kid.x = x; x += kid.value; place.push(kid); }
    maxDepth = Math.max(maxDepth, f.depth);
  }
  return { root, frames, maxDepth };
}

export class TraceViews {
  constructor({ onSelect, onOpenChange }) {
    this.onSelect = onSelect;
    this.onOpenChange = onOpenChange;
    const $ = (id) => document.getElementById(id);
    this.view = $("tree-view");
    this.scroll = $("tree-scroll");
    this.canvas = $("tree-canvas");
    this.spacer = $("tree-spacer");
    this.tip = $("tree-tip");
    this.mode = "tree";
    this.collapsed = new Set();
    this.rows = new Int32Array(0);
    this.selected = -1;
    this.onPath = new Set();
    this.pathFrames = new Set();
    $("tree-close").onclick = () => this.close();
    $("tree-tab-tree").onclick = () => this.show("tree");
    $("tree-tab-flame").onclick = () => this.show("flame");
    $("tree-expand").onclick = () => { this.collapsed.clear(); this.layoutRows(); };
    $("tree-collapse").onclick = () => this.collapseBelow(1);
    $("flame-reset").onclick = () => this.zoomTo(null);
    this.scroll.addEventListener("scroll", () => this.invalidate());
    new ResizeObserver(() => { if (this.isOpen) { this.sizeSpacer(); this.invalidate(); } }).observe(this.scroll);
    this.canvas.addEventListener("click", (event) => this.click(event));
    this.canvas.addEventListener("mousemove", (event) => this.hover(event));
    this.canvas.addEventListener("mouseleave", () => (this.tip.hidden = true));
    this.scroll.addEventListener("keydown", (event) => this.key(event));
  }

  get isOpen() { return !this.view.hidden; }

  /** Opens the views on a trace's spans (as Details.show prepares them) and its critical path. */
  open(traceId, spans, path) {
    this.view.hidden = false;
    this.onOpenChange?.(true);
    this.setTrace(traceId, spans, path);
    this.show(this.mode);
    this.scroll.focus();
  }

  /** The trace again (it grew while open) keeps what was collapsed; another trace starts afresh. */
  setTrace(traceId, spans, path) {
    const built = performance.now();
    const keep = traceId === this.traceId;
    const collapsedSeqs = keep ? new Set([...this.collapsed].map((i) => this.tree.spans[i].seq)) : new Set();
    const selectedSeq = keep && this.selected >= 0 ? this.tree.spans[this.selected].seq : null;
    this.traceId = traceId;
    this.tree = buildSpanTree(spans);
    this.flame = buildFlame(this.tree);
    this.zoom = this.flame.root;
    this.collapsed = new Set();
    this.selected = -1;
    this.tree.spans.forEach((s, i) => {
      if (collapsedSeqs.has(s.seq)) this.collapsed.add(i);
      if (s.seq === selectedSeq) this.selected = i;
    });
    this.setCriticalPath(path);
    this.canvas.dataset.buildMs = (performance.now() - built).toFixed(1);
    this.layoutRows();
    const roots = this.tree.spans.reduce((n, _, i) => n + (this.tree.parent[i] === -1 ? 1 : 0), 0);
    document.getElementById("tree-summary").textContent =
      `${traceId} · ${spans.length.toLocaleString()} spans · ${roots.toLocaleString()} root${roots === 1 ? "" : "s"} · depth ${this.tree.maxDepth + 1} · ` +
      `${this.flame.frames.length.toLocaleString()} frames · ${formatDuration(this.tree.end - this.tree.start)}`;
    this.canvas.dataset.spans = String(spans.length);
    this.canvas.dataset.frames = String(this.flame.frames.length);
  }

  /** Marks the spans of a critical path, and the flame frames that hold one (once, not per draw). */
  setCriticalPath(path) {
    this.onPath = new Set((path?.path ?? []).map((step) => step.seq));
    this.pathFrames = new Set(this.onPath.size && this.flame
      ? this.flame.frames.filter((f) => f.members.some((m) => this.onPath.has(this.tree.spans[m].seq))) : []);
    this.invalidate();
  }

  close() {
    if (this.view.hidden) return;
    this.view.hidden = true;
    this.tip.hidden = true;
    this.onOpenChange?.(false);
  }

  show(mode) {
    this.mode = mode;
    for (const name of ["tree", "flame"]) document.getElementById(`tree-tab-${name}`).setAttribute("aria-selected", String(name === mode));
    document.getElementById("tree-expand").hidden = mode !== "tree";
    document.getElementById("tree-collapse").hidden = mode !== "tree";
    document.getElementById("flame-reset").hidden = mode !== "flame";
    document.getElementById("tree-hint").textContent = mode === "tree"
      ? "↑↓ move · ←→ fold · Enter folds · Esc closes" : "A click zooms into a frame · the top bar zooms out · Esc closes";
    this.canvas.setAttribute("aria-label", mode === "tree" ? "The trace's spans as a tree, one row per span, bars on a time axis" : "The trace as a flame graph");
    this.scroll.scrollTop = 0;
    this.sizeSpacer();
    if (mode === "tree" && this.selected >= 0) this.reveal(this.selected);
    this.invalidate();
  }

  // MARK: Rows of the span tree

  /** The rows shown: the pre-order, each collapsed span's subtree skipped. */
  layoutRows() {
    const { order, size } = this.tree;
    const rows = new Int32Array(order.length);
    let count = 0;
    for (let k = 0; k < order.length; k++) {
      const node = order[k];
      rows[count++] = node;
      if (this.collapsed.has(node)) k += size[node] - 1;
    }
    this.rows = rows.subarray(0, count);
    this.rowOf = null;
    this.canvas.dataset.rows = String(count);
    this.sizeSpacer();
    this.invalidate();
  }

  rowIndex(node) {
    if (!this.rowOf) { this.rowOf = new Map(); this.rows.forEach((n, r) => this.rowOf.set(n, r)); }
    return this.rowOf.get(node) ?? -1;
  }

  toggle(node) {
    if (!this.tree.children[node].length) return;
    if (this.collapsed.has(node)) this.collapsed.delete(node); else this.collapsed.add(node);
    this.layoutRows();
  }

  /** Folds every span with children from this depth down: the spans above it and their children
   *  stay in view, and opening a folded span shows just its children. */
  collapseBelow(depth) {
    this.collapsed.clear();
    const { depth: depths, children } = this.tree;
    for (let i = 0; i < depths.length; i++) if (depths[i] >= depth && children[i].length) this.collapsed.add(i);
    this.scroll.scrollTop = 0;
    this.layoutRows();
  }

  /** Opens the ancestors of a span and scrolls its row into view. */
  reveal(node) {
    let changed = false;
    for (let p = this.tree.parent[node]; p !== -1; p = this.tree.parent[p]) if (this.collapsed.delete(p)) changed = true;
    if (changed) this.layoutRows();
    const row = this.rowIndex(node), height = this.scroll.clientHeight - AXIS;
    const top = row * ROW;
    if (top < this.scroll.scrollTop) this.scroll.scrollTop = top;
    else if (top + ROW > this.scroll.scrollTop + height) this.scroll.scrollTop = top + ROW - height;
  }

  select(node) {
    this.selected = node;
    const s = this.tree.spans[node];
    document.getElementById("tree-status").innerHTML =
      `<b>${escapeHTML(s.operation)}</b> · ${escapeHTML(s.source)} · ${escapeHTML(s.stage)} · ${formatDuration(s.duration_ms)}` +
      ` · +${formatDuration(s.t - this.tree.start)} · depth ${this.tree.depth[node]} · ${this.tree.size[node] - 1} below · seq ${s.seq}` +
      (s.error ? ` · <span class="bad">error</span>` : "") + (this.onPath.has(s.seq) ? ` · <span class="path">on the critical path</span>` : "");
    this.onSelect?.(s);
    this.invalidate();
  }

  key(event) {
    if (this.mode !== "tree" || !this.rows.length) return;
    const row = Math.max(0, this.rowIndex(this.selected));
    const go = (r) => { const node = this.rows[Math.min(this.rows.length - 1, Math.max(0, r))]; this.select(node); this.reveal(node); };
    const page = Math.max(1, Math.floor((this.scroll.clientHeight - AXIS) / ROW) - 1);
    const node = this.selected;
    switch (event.key) {
      case "ArrowDown": go(this.selected < 0 ? 0 : row + 1); break;
      case "ArrowUp": go(row - 1); break;
      case "PageDown": go(row + page); break;
      case "PageUp": go(row - page); break;
      case "Home": go(0); break;
      case "End": go(this.rows.length - 1); break;
      case "ArrowRight": if (node >= 0 && this.collapsed.has(node)) this.toggle(node); else if (node >= 0) go(row + 1); break;
      case "ArrowLeft":
        if (node >= 0 && this.tree.children[node].length && !this.collapsed.has(node)) this.toggle(node);
        else if (node >= 0 && this.tree.parent[node] !== -1) go(this.rowIndex(this.tree.parent[node]));
        break;
      case "Enter": case " ": if (node >= 0) this.toggle(node); break;
      default: return;
    }
    event.preventDefault();
  }

  // MARK: Drawing

  sizeSpacer() {
    const height = this.scroll.clientHeight;
    const content = this.mode === "tree" ? AXIS + this.rows.length * ROW : AXIS + ((this.flame?.maxDepth ?? 0) + 1) * LEVEL + 40;
    this.spacer.style.height = `${Math.max(0, content - height)}px`;
  }

  invalidate() {
    if (this.pending || !this.isOpen) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  draw() {
    if (!this.tree || !this.isOpen) return;
    const began = performance.now();
    this.canvas.style.height = `${this.scroll.clientHeight}px`;
    const { ctx, width, height } = fitCanvas(this.canvas);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "12px Inter, system-ui, sans-serif";
    ctx.textBaseline = "middle";
    if (this.mode === "tree") this.drawTree(ctx, width, height); else this.drawFlame(ctx, width, height);
    this.canvas.dataset.drawMs = (performance.now() - began).toFixed(2);
    this.canvas.dataset.drawn = String((Number(this.canvas.dataset.drawn) || 0) + 1);
  }

  labelWidth(width) { return Math.round(Math.min(520, Math.max(240, width * 0.38))); }

  drawTree(ctx, width, height) {
    const { spans, depth, children, start, end } = this.tree;
    const label = this.labelWidth(width), scale = (width - label - 16) / Math.max(end - start, 1e-6);
    const top = this.scroll.scrollTop;
    const first = Math.floor(top / ROW), last = Math.min(this.rows.length - 1, Math.ceil((top + height - AXIS) / ROW));
    this.drawAxis(ctx, label, width, start, end, scale);
    ctx.save();
    ctx.beginPath(); ctx.rect(0, AXIS, width, height - AXIS); ctx.clip();
    for (let r = first; r <= last; r++) {
      const node = this.rows[r], s = spans[node];
      const y = AXIS + r * ROW - top;
      if (r % 2) { ctx.fillStyle = "rgba(255,255,255,0.02)"; ctx.fillRect(0, y, width, ROW); }
      if (node === this.selected) { ctx.fillStyle = "rgba(0,188,212,0.16)"; ctx.fillRect(0, y, width, ROW); }
      const indent = 6 + Math.min(depth[node], 24) * INDENT;
      ctx.fillStyle = "#8a93a6";
      if (children[node].length) ctx.fillText(this.collapsed.has(node) ? "▸" : "▾", indent, y + ROW / 2);
      ctx.fillStyle = s.error ? "#f44336" : stageColour(s.stage);
      ctx.fillRect(indent + 13, y + 6, 8, 8);
      const onPath = this.onPath.has(s.seq);
      const more = this.collapsed.has(node) ? `  +${(this.tree.size[node] - 1).toLocaleString()}` : "";
      const text = `${s.operation}  ${s.source}${more}`;
      const room = label - indent - 30;
      ctx.fillStyle = onPath ? "#ffc107" : s.error ? "#ff8a80" : "#c9ced9";
      ctx.fillText(fit(ctx, text, room), indent + 26, y + ROW / 2);
      // The bar, at least a pixel wide; its duration after it when there is room.
      const x = label + 8 + (s.t - start) * scale, w = Math.max(1, s.d * scale);
      ctx.fillStyle = s.error ? "#f44336" : stageColour(s.stage);
      ctx.fillRect(x, y + 4, w, ROW - 8);
      if (onPath) { ctx.strokeStyle = "#ffc107"; ctx.lineWidth = 2; ctx.strokeRect(x - 1, y + 3, w + 2, ROW - 6); }
      const duration = formatDuration(s.duration_ms);
      ctx.fillStyle = "#8a93a6";
      if (x + w + 6 + duration.length * 7 < width) ctx.fillText(duration, x + w + 6, y + ROW / 2);
      else ctx.fillText(duration, Math.max(label + 8, x - 6 - duration.length * 7), y + ROW / 2);
    }
    ctx.restore();
    ctx.strokeStyle = "rgba(255,255,255,0.08)";
    ctx.beginPath(); ctx.moveTo(label + 0.5, 0); ctx.lineTo(label + 0.5, height); ctx.stroke();
    this.layoutInfo = { label, scale, top, first, last };
  }

  drawAxis(ctx, label, width, start, end, scale) {
    ctx.fillStyle = "#8a93a6";
    ctx.fillText("Operation  source", 8, AXIS / 2);
    const step = niceStep((end - start) / Math.max(2, (width - label) / 100));
    ctx.strokeStyle = "rgba(0,188,212,0.14)";
    for (let t = 0; t <= end - start + 1e-9; t += step) {
      const x = Math.round(label + 8 + t * scale) + 0.5;
      ctx.beginPath(); ctx.moveTo(x, AXIS - 4); ctx.lineTo(x, this.canvas.clientHeight); ctx.stroke();
      ctx.fillText(formatDuration(t), x + 3, AXIS / 2);
    }
  }

  drawFlame(ctx, width, height) {
    const zoom = this.zoom, top = this.scroll.scrollTop;
    const scale = (width - 16) / zoom.value, left = 8;
    ctx.fillStyle = "#8a93a6";
    ctx.fillText(zoom === this.flame.root ? `Whole trace · ${formatDuration(zoom.value)} · click a frame to zoom into it`
      : `${zoom.operation} (${zoom.source}) · ${formatDuration(zoom.value)} · click the top bar or Reset to zoom out`, 8, AXIS / 2);
    ctx.save();
    ctx.beginPath(); ctx.rect(0, AXIS, width, height - AXIS); ctx.clip();
    // The zoomed frame's ancestors as full-width bars above it, then its subtree: a frame and
    // its children are skipped once narrower than a third of a pixel.
    const placed = [];
    const baseDepth = zoom.depth + 1;
    const ancestors = [];
    for (let f = zoom; f && f !== this.flame.root; f = f.parent) ancestors.unshift(f);
    const levelY = (d) => AXIS + (d - baseDepth + ancestors.length) * LEVEL - top;
    const box = (f, x, w) => {
      const y = levelY(f.depth);
      if (y + LEVEL < AXIS || y > height) return;
      ctx.fillStyle = f.errors ? "#e53935" : flameColour(f);
      ctx.fillRect(x, y + 1, Math.max(w - 1, 0.5), LEVEL - 2);
      if (this.pathFrames.has(f)) { ctx.strokeStyle = "#ffc107"; ctx.lineWidth = 1.5; ctx.strokeRect(x + 0.75, y + 1.75, Math.max(w - 2.5, 0.5), LEVEL - 3.5); }
      if (w > 36) {
        ctx.fillStyle = "#0b0c10";
        const count = f.members.length > 1 ? ` ×${f.members.length.toLocaleString()}` : "";
        ctx.fillText(fit(ctx, `${f.operation} · ${f.source}${count}`, w - 8), x + 4, y + LEVEL / 2);
      }
      placed.push({ f, x, y, w });
    };
    for (const a of ancestors) box(a, left, width - 16);
    const stack = [...zoom.kids];
    let drawn = ancestors.length;
    while (stack.length) {
      const f = stack.pop();
      const w = f.value * scale;
      if (w < 0.33) continue;
      box(f, left + (f.x - zoom.x) * scale, w);
      drawn++;
      for (const kid of f.kids) stack.push(kid);
    }
    ctx.restore();
    this.placedFrames = placed;
    this.canvas.dataset.framesDrawn = String(drawn);
  }

  // MARK: Pointer

  at(event) {
    const rect = this.canvas.getBoundingClientRect();
    return { x: event.clientX - rect.left, y: event.clientY - rect.top };
  }

  nodeAt(event) {
    const { x, y } = this.at(event);
    if (!this.layoutInfo || y < AXIS) return null;
    const row = Math.floor((y - AXIS + this.scroll.scrollTop) / ROW);
    if (row < 0 || row >= this.rows.length) return null;
    const node = this.rows[row];
    const indent = 6 + Math.min(this.tree.depth[node], 24) * INDENT;
    return { node, onToggle: x >= indent - 4 && x <= indent + 12 };
  }

  frameAt(event) {
    const { x, y } = this.at(event);
    for (const p of this.placedFrames ?? []) if (x >= p.x && x <= p.x + p.w && y >= p.y && y <= p.y + LEVEL) return p.f;
    return null;
  }

  click(event) {
    if (this.mode === "tree") {
      const hit = this.nodeAt(event);
      if (!hit) return;
      if (hit.onToggle) this.toggle(hit.node); else this.select(hit.node);
      return;
    }
    const frame = this.frameAt(event);
    if (!frame) return;
    this.zoomTo(frame === this.zoom ? frame.parent : frame);
    const first = frame.members[0];
    if (first !== undefined) this.select(first);
  }

  zoomTo(frame) {
    this.zoom = frame && frame !== this.flame.root ? frame : this.flame.root;
    this.canvas.dataset.zoomed = String(this.zoom !== this.flame.root);
    this.invalidate();
  }

  hover(event) {
    let html = null;
    if (this.mode === "tree") {
      const hit = this.nodeAt(event);
      if (hit) {
        const s = this.tree.spans[hit.node];
        html = `<b>${escapeHTML(s.operation)}</b><br>${escapeHTML(s.source)} · ${escapeHTML(s.stage)}<br>${formatDuration(s.duration_ms)} at +${formatDuration(s.t - this.tree.start)}` +
          `<br><span class="muted">${this.tree.size[hit.node] - 1} spans below</span>`;
      }
    } else {
      const f = this.frameAt(event);
      if (f) {
        const whole = this.flame.root.value;
        html = `<b>${escapeHTML(f.operation)}</b><br>${escapeHTML(f.source)} · ${f.members.length.toLocaleString()} span${f.members.length === 1 ? "" : "s"}` +
          `<br>${formatDuration(f.value)} (${(f.value / whole * 100).toFixed(1)}% of the trace) · self ${formatDuration(f.self)}` +
          (f.errors ? `<br><span style="color:#ff6b60">${f.errors} error${f.errors === 1 ? "" : "s"}</span>` : "");
      }
    }
    if (!html) { this.tip.hidden = true; return; }
    const { x, y } = this.at(event);
    const rect = this.canvas.getBoundingClientRect();
    this.tip.innerHTML = html;
    this.tip.hidden = false;
    this.tip.style.left = `${Math.min(x + 14, rect.width - 300)}px`;
    this.tip.style.top = `${Math.min(y + 14, rect.height - 90) + this.scroll.scrollTop}px`;
  }
}

/** A text cut in the middle to fit a width in pixels (measured, so proportional fonts fit). */
function fit(ctx, text, room) {
  if (room <= 8) return "";
  if (ctx.measureText(text).width <= room) return text;
  let keep = Math.max(1, Math.floor(text.length * room / ctx.measureText(text).width) - 1);
  while (keep > 1) {
    const head = Math.ceil(keep / 2), tail = keep - head;
    const cut = text.slice(0, head) + "…" + (tail ? text.slice(text.length - tail) : "");
    if (ctx.measureText(cut).width <= room) return cut;
    keep--;
  }
  return "";
}

/** Warm colours by source, lighter by operation: neighbours differ, one source reads as one hue. */
function flameColour(f) {
  let h = 0;
  for (let i = 0; i < f.source.length; i++) h = (h * 31 + f.source.charCodeAt(i)) >>> 0;
  let o = 0;
  for (let i = 0; i < f.operation.length; i++) o = (o * 17 + f.operation.charCodeAt(i)) >>> 0;
  return `hsl(${15 + (h % 45)}, ${70 + (o % 20)}%, ${52 + (o % 14)}%)`;
}
