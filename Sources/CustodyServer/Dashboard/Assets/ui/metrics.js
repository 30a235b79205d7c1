// The metrics strip: spans/s per source (sparklines), source × minute (heatmap of throughput or
// average latency; a cell's tooltip says "37 ops/min @ agent-factory (avg 180 ms)", a click
// filters by that source) and a latency histogram. Canvas, redrawn once a second.
import { fitCanvas, escapeHTML, formatDuration } from "./util.js";
import { HISTOGRAM_EDGES } from "./store.js";

export class Metrics {
  constructor(store, { onSource }) {
    this.store = store;
    this.onSource = onSource;
    this.mode = "throughput";
    this.sparkRows = new Map();
    this.heatCells = [];
    this.heatmap = document.getElementById("heatmap");
    this.histogram = document.getElementById("histogram");
    this.tooltip = document.getElementById("tooltip");
    const throughput = document.getElementById("heat-throughput"), latency = document.getElementById("heat-latency");
    const setMode = (mode) => {
      this.mode = mode;
      throughput.setAttribute("aria-pressed", String(mode === "throughput"));
      latency.setAttribute("aria-pressed", String(mode === "latency"));
      this.drawHeatmap();
    };
    throughput.onclick = () => setMode("throughput");
    latency.onclick = () => setMode("latency");
    this.heatmap.addEventListener("mousemove", (event) => this.heatHover(event));
    this.heatmap.addEventListener("mouseleave", () => (this.heatTip?.remove(), (this.heatTip = null)));
    this.heatmap.addEventListener("click", (event) => {
      const cell = this.cellAt(event);
      if (cell) this.onSource(cell.source);
    });
    setInterval(() => this.draw(), 1000);
    new ResizeObserver(() => this.draw()).observe(this.heatmap);
  }

  draw() {
    this.drawSparklines();
    this.drawHeatmap();
    this.drawHistogram();
  }

  drawSparklines() {
    const container = document.getElementById("sparklines");
    for (const source of [...this.store.sources].sort()) {
      let row = this.sparkRows.get(source);
      if (!row) {
        row = document.createElement("div");
        row.className = "spark";
        row.innerHTML = `<span class="name" title="${escapeHTML(source)}">${escapeHTML(source)}</span><canvas aria-label="spans per second of ${escapeHTML(source)}"></canvas><span class="value"></span>`;
        container.appendChild(row);
        this.sparkRows.set(source, row);
      }
      const values = this.store.series(source, 60);
      row.querySelector(".value").textContent = `${values[values.length - 1].toFixed(0)}/s`;
      const { ctx, width, height } = fitCanvas(row.querySelector("canvas"));
      ctx.clearRect(0, 0, width, height);
      const max = Math.max(1, ...values);
      ctx.beginPath();
      values.forEach((v, i) => {
        const x = (i / (values.length - 1)) * width, y = height - 2 - (v / max) * (height - 4);
        i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
      });
      ctx.strokeStyle = "#00bcd4"; ctx.lineWidth = 1.5; ctx.stroke();
      ctx.lineTo(width, height); ctx.lineTo(0, height); ctx.closePath();
      ctx.fillStyle = "rgba(0,188,212,0.12)"; ctx.fill();
    }
  }

  drawHeatmap() {
    const { ctx, width, height } = fitCanvas(this.heatmap);
    ctx.clearRect(0, 0, width, height);
    const rows = this.store.heat();
    this.heatCells = [];
    if (!rows.length) return;
    const label = 112, top = 4, bottom = 16;
    const cellW = (width - label - 6) / rows[0].row.length, cellH = Math.min(22, (height - top - bottom) / rows.length);
    const values = rows.flatMap((r) => r.row.map((c) => (this.mode === "throughput" ? c.count : c.avg)));
    const max = Math.max(1, ...values);
    ctx.font = "11px Inter, system-ui, sans-serif";
    rows.forEach((r, y) => {
      ctx.fillStyle = "#8a93a6";
      ctx.fillText(r.source.length > 16 ? r.source.slice(0, 15) + "…" : r.source, 6, top + y * cellH + cellH * 0.7);
      r.row.forEach((c, x) => {
        const value = this.mode === "throughput" ? c.count : c.avg;
        const k = value / max;
        ctx.fillStyle = value === 0 ? "rgba(255,255,255,0.03)" : this.mode === "throughput" ? `rgba(0,188,212,${0.15 + 0.85 * k})` : `rgba(255,140,0,${0.15 + 0.85 * k})`;
        const cx = label + x * cellW, cy = top + y * cellH;
        ctx.fillRect(cx + 1, cy + 1, cellW - 2, cellH - 2);
        this.heatCells.push({ x: cx, y: cy, w: cellW, h: cellH, source: r.source, cell: c });
      });
    });
    ctx.fillStyle = "#8a93a6";
    ctx.fillText("−30 min", label, height - 3);
    ctx.fillText("now", width - 30, height - 3);
  }

  cellAt(event) {
    const rect = this.heatmap.getBoundingClientRect();
    const x = event.clientX - rect.left, y = event.clientY - rect.top;
    return this.heatCells.find((c) => x >= c.x && x < c.x + c.w && y >= c.y && y < c.y + c.h) ?? null;
  }

  heatHover(event) {
    const hit = this.cellAt(event);
    if (!hit) { this.heatTip?.remove(); this.heatTip = null; return; }
    if (!this.heatTip) {
      this.heatTip = document.createElement("div");
      this.heatTip.className = "tooltip";
      this.heatTip.style.position = "fixed";
      document.body.appendChild(this.heatTip);
    }
    this.heatTip.textContent = `${hit.cell.count} ops/min @ ${hit.source} (avg ${formatDuration(hit.cell.avg)})`;
    this.heatTip.style.left = `${event.clientX + 12}px`;
    this.heatTip.style.top = `${event.clientY - 34}px`;
  }

  drawHistogram() {
    const { ctx, width, height } = fitCanvas(this.histogram);
    ctx.clearRect(0, 0, width, height);
    const counts = this.store.histogram;
    const total = counts.reduce((a, b) => a + b, 0);
    document.getElementById("latency-note").textContent = total ? `${total.toLocaleString()} spans` : "";
    const max = Math.max(1, ...counts);
    const bottom = 18, barW = (width - 16) / counts.length;
    ctx.font = "10px Inter, system-ui, sans-serif";
    counts.forEach((count, i) => {
      const h = (count / max) * (height - bottom - 8);
      ctx.fillStyle = i >= 9 ? "#ff8c00" : "#00bcd4";
      ctx.fillRect(8 + i * barW + 2, height - bottom - h, barW - 4, h);
      ctx.fillStyle = "#8a93a6";
      // Every label when there is room, else every second or third one.
      const every = barW < 22 ? 3 : barW < 34 ? 2 : 1;
      if (i % every !== 0) return;
      const edge = HISTOGRAM_EDGES[i];
      const text = edge === Infinity ? "5s+" : edge >= 1000 ? `${edge / 1000}s` : `${edge}`;
      ctx.fillText(`<${text}`.replace("<5s+", "5s+"), 8 + i * barW + 2, height - 5);
    });
  }
}
