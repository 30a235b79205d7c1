// The replay console (trace id, dry run / live run, speed, Start; status; a summary card with
// "View in timeline"), the replay history drawer with "Compare", and the compare view: the two
// traces one above the other, matched spans joined, pairs more than 10% apart in red.
import { api } from "./api.js";
import { escapeHTML, fitCanvas, formatClock, formatDuration, parseTime, stageColour, toast } from "./util.js";

export class ReplayConsole {
  constructor({ onView }) {
    this.onView = onView;
    this.form = document.getElementById("replay-form");
    this.status = document.getElementById("replay-status");
    this.summary = document.getElementById("replay-summary");
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.start(); });
    document.getElementById("open-history").onclick = () => this.openHistory();
    document.getElementById("history-close").onclick = () => this.closeHistory();
    document.getElementById("compare-close").onclick = () => this.closeCompare();
    document.getElementById("compare-shared").onchange = () => this.comparison && this.drawCompare();
    new ResizeObserver(() => this.comparison && this.drawCompare()).observe(document.getElementById("compare-canvas"));
  }

  prefill(traceId) {
    document.getElementById("replay-trace").value = traceId;
  }

  setStatus(text, kind) {
    this.status.textContent = text;
    this.status.className = kind;
  }

  async start() {
    const traceId = document.getElementById("replay-trace").value.trim();
    const mode = this.form.querySelector("input[name=mode]:checked").value;
    const speed = Number(document.getElementById("replay-speed").value) || 0;
    if (!traceId) return;
    this.setStatus("Running", "running");
    this.summary.hidden = true;
    document.getElementById("replay-start").disabled = true;
    try {
      const result = await api.replay(traceId, mode, speed);
      this.setStatus("Completed", "completed");
      this.summary.hidden = false;
      this.summary.dataset.newTrace = result.new_trace;
      this.summary.innerHTML = `<dl>
        <dt>Original</dt><dd>${escapeHTML(result.from_trace)}</dd>
        <dt>New trace</dt><dd id="replay-new-trace">${escapeHTML(result.new_trace)}</dd>
        <dt>Spans</dt><dd>${result.spans}${result.errors ? ` · <span style="color:#ff6b60">${result.errors} errors</span>` : ""}</dd>${undispatchedRow(result.undispatched)}
        <dt>Duration</dt><dd>${formatDuration(result.duration_ms)}</dd>
        <dt>Mode</dt><dd>${escapeHTML(result.mode)}${result.speed ? ` · ${result.speed}×` : " · as fast as possible"}</dd></dl>
        <div class="buttons"><button type="button" class="primary" id="replay-view">View in timeline</button>
        <button type="button" id="replay-compare">Compare with original</button></div>`;
      document.getElementById("replay-view").onclick = () => this.onView(result.new_trace);
      document.getElementById("replay-compare").onclick = () => this.compare(result.from_trace, result.new_trace, result);
      if (!document.getElementById("history").hidden) this.openHistory();
    } catch (error) {
      this.setStatus("Failed", "failed");
      this.summary.hidden = false;
      this.summary.textContent = `${error.code}: ${error.message}`;
    } finally {
      document.getElementById("replay-start").disabled = false;
    }
  }

  async openHistory() {
    const drawer = document.getElementById("history");
    drawer.hidden = false;
    const list = document.getElementById("history-list");
    try {
      const { replays } = await api.replays(100);
      list.innerHTML = replays.length ? "" : `<div class="empty">No replays yet. Select a trace and press Replay.</div>`;
      for (const replay of replays) {
        const row = document.createElement("div");
        row.className = "history-row";
        row.innerHTML = `<span class="muted">${formatClock(parseTime(replay.started_at), false)}</span>
          <span class="traces"><code title="original">${escapeHTML(replay.from_trace)}</code><code title="replay">${escapeHTML(replay.new_trace)}</code></span>
          <span>${escapeHTML(replay.mode)}</span><span class="status-${escapeHTML(replay.status)}">${escapeHTML(replay.status)}</span>
          <button type="button" class="compare">Compare</button>`;
        row.querySelector(".compare").onclick = () => this.compare(replay.from_trace, replay.new_trace, replay);
        row.querySelector(".compare").disabled = replay.status !== "completed";
        list.appendChild(row);
      }
      list.querySelector("button.compare:not([disabled])")?.focus();
    } catch (error) {
      toast(`Replays could not be read: ${error.message}`);
    }
  }

  closeHistory() { document.getElementById("history").hidden = true; }

  /** Compares trace `a` with `b`; `replay`, when `b` replays `a`, says how (its mode and speed). */
  async compare(a, b, replay) {
    try {
      this.comparison = await api.compare(a, b);
    } catch (error) {
      toast(`Compare failed: ${error.message}`);
      return;
    }
    const view = document.getElementById("compare-view");
    view.hidden = false;
    const c = this.comparison;
    document.getElementById("compare-a").textContent = a;
    document.getElementById("compare-b").textContent = b;
    document.getElementById("compare-summary").textContent =
      `${c.pairs.length} pairs · ${c.deviations} deviations · ${c.only_a.length} only in the first · ${c.only_b.length} only in the second`;
    // A dry run at speed 0 runs nothing and waits for nothing: its durations say how fast Custody
    // replayed, not how long the work took.
    const note = document.getElementById("compare-note");
    note.hidden = !(replay && replay.mode === "dry-run" && !replay.speed);
    note.textContent = "The second trace is a dry run at speed 0 (as fast as possible): its durations are not comparable with the first's.";
    const table = document.getElementById("compare-table");
    table.innerHTML = `<div class="row head"><span>Operation</span><span>Source</span><span>Stage</span><span class="num">First</span><span class="num">Second</span><span class="num">Δ</span></div>` +
      c.pairs.map((p) => `<div class="row${p.deviates ? " bad" : ""}"><span>${escapeHTML(p.operation)}</span><span>${escapeHTML(p.source)}</span><span>${escapeHTML(p.stage)}</span>` +
        `<span class="num">${formatDuration(p.a_duration_ms)}</span><span class="num">${formatDuration(p.b_duration_ms)}</span>` +
        `<span class="num">${p.delta_ms === null ? "—" : (p.delta_ms < 0 ? "−" : "+") + formatDuration(Math.abs(p.delta_ms))}</span></div>`).join("");
    this.drawCompare();
    document.getElementById("compare-close").focus();
  }

  drawCompare() {
    const c = this.comparison;
    const { ctx, width, height } = fitCanvas(document.getElementById("compare-canvas"));
    ctx.clearRect(0, 0, width, height);
    const lane = (spans) => {
      const items = spans.map((s) => ({ s, t: parseTime(s.timestamp), d: s.duration_ms ?? 0 }));
      const start = Math.min(...items.map((i) => i.t)), end = Math.max(...items.map((i) => i.t + i.d));
      return { items, start, end };
    };
    const a = lane(c.pairs.map((p) => p.a).concat(c.only_a)), b = lane(c.pairs.map((p) => p.b).concat(c.only_b));
    if (!a.items.length || !b.items.length) return;
    const left = 12, right = width - 12, mid = height / 2;
    const bandA = { top: 26, bottom: mid - 24 }, bandB = { top: mid + 24, bottom: height - 10 };
    // One scale for both (the longer trace fills the width), so that the joining lines compare
    // like with like; or each trace fitted to the width.
    const shared = document.getElementById("compare-shared").checked;
    const longest = Math.max(a.end - a.start, b.end - b.start, 1e-6);
    const place = (l, band) => {
      const scale = (right - left) / (shared ? longest : Math.max(l.end - l.start, 1e-6));
      const rowH = Math.max(2, Math.min(10, (band.bottom - band.top) / Math.max(1, l.items.length)));
      const map = new Map();
      l.items.forEach((item, i) => {
        const x = left + (item.t - l.start) * scale, w = Math.max(2, item.d * scale), y = band.top + i * rowH;
        map.set(item.s.seq, { x, w, y, h: Math.max(1, rowH - 1) });
        ctx.fillStyle = stageColour(item.s.stage);
        ctx.fillRect(x, y, w, Math.max(1, rowH - 1));
      });
      return map;
    };
    ctx.font = "12px Inter, system-ui, sans-serif";
    ctx.fillStyle = "#00bcd4"; ctx.fillText(`first · ${formatDuration(a.end - a.start)}`, left, 16);
    ctx.fillStyle = "#ff8c00"; ctx.fillText(`second · ${formatDuration(b.end - b.start)}`, left, mid + 16);
    const placedA = place(a, bandA), placedB = place(b, bandB);
    for (const p of c.pairs) {
      const from = placedA.get(p.a.seq), to = placedB.get(p.b.seq);
      if (!from || !to) continue;
      ctx.strokeStyle = p.deviates ? "rgba(244,67,54,0.85)" : "rgba(0,188,212,0.25)";
      ctx.lineWidth = p.deviates ? 1.5 : 1;
      ctx.beginPath(); ctx.moveTo(from.x + from.w / 2, from.y + from.h); ctx.lineTo(to.x + to.w / 2, to.y); ctx.stroke();
      if (p.deviates) { ctx.strokeStyle = "#f44336"; ctx.strokeRect(to.x - 1, to.y - 1, to.w + 2, to.h + 2); }
    }
  }

  closeCompare() { document.getElementById("compare-view").hidden = true; this.comparison = null; }
}

// A live replay that could not act out every span says so: which sources had no worker.
function undispatchedRow(undispatched) {
  const entries = Object.entries(undispatched || {}).filter(([, count]) => count > 0);
  if (entries.length === 0) return "";
  const list = entries.sort(([a], [b]) => a.localeCompare(b)).map(([source, count]) => `${escapeHTML(source)} ${count}`).join(", ");
  return `<dt>Not dispatched</dt><dd id="replay-undispatched" style="color:#f0b429;word-break:normal">${list} — no worker configured</dd>`;
}
