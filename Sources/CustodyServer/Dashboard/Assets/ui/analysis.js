// The analysis overlay: the custody graph (GET /api/graph) and the query box (GET /api/traces?q=,
// GET /api/metrics/query). Both canvases; the graph's hand-offs are also a list, for keyboards and
// screen readers.

import { api } from "./api.js";
import { escapeHTML, fitCanvas, formatDuration } from "./util.js";

const SERIES_COLOURS = ["#00bcd4", "#ff8c00", "#4caf50", "#ab47bc", "#f44336", "#ffeb3b", "#90caf9", "#ec407a", "#26a69a", "#8d6e63"];
const METRIC = /\|\s*(rate|count_over_time|avg_over_time|quantile_over_time)\s*\(/;

export class Analysis {
  constructor({ openTrace }) {
    this.openTrace = openTrace;
    this.graph = null;
    this.layout = [];
    this.series = null;
    const $ = (id) => document.getElementById(id);
    this.view = $("analysis-view");
    $("open-analysis").onclick = () => this.open("graph");
    $("analysis-close").onclick = () => this.close();
    $("analysis-tab-graph").onclick = () => this.show("graph");
    $("analysis-tab-query").onclick = () => this.show("query");
    $("graph-window").onchange = () => this.loadGraph();
    $("query-window").onchange = () => this.run();
    $("query-form").onsubmit = (event) => { event.preventDefault(); this.run(); };
    const canvas = $("graph-canvas");
    canvas.addEventListener("mousemove", (event) => this.hover(event));
    canvas.addEventListener("mouseleave", () => ($("graph-tip").hidden = true));
    canvas.addEventListener("click", (event) => { const edge = this.edgeAt(event); if (edge) this.listEdge(edge); });
    $("graph-edges").addEventListener("click", (event) => {
      const row = event.target.closest("button.graph-edge");
      if (row) this.listEdge(this.graph.edges[Number(row.dataset.index)]);
    });
    for (const list of [$("graph-traces"), $("query-results")]) {
      list.addEventListener("click", (event) => {
        const row = event.target.closest("button.query-trace");
        if (row) { this.close(); this.openTrace(row.dataset.trace); }
      });
    }
    window.addEventListener("resize", () => { if (!this.view.hidden) { this.drawGraph(); this.drawSeries(); } });
  }

  get isOpen() { return !this.view.hidden; }

  open(tab, query) {
    this.view.hidden = false;
    this.show(tab);
    if (query !== undefined) { document.getElementById("query-input").value = query; this.run(); }
  }

  close() { this.view.hidden = true; }

  show(tab) {
    for (const name of ["graph", "query"]) {
      document.getElementById(`analysis-tab-${name}`).setAttribute("aria-selected", String(name === tab));
      document.getElementById(`analysis-${name}`).hidden = name !== tab;
    }
    if (tab === "graph") this.loadGraph();
    else document.getElementById("query-input").focus();
  }

  window(id) {
    const minutes = Number(document.getElementById(id).value);
    const until = new Date();
    return { since: new Date(until.getTime() - minutes * 60000).toISOString(), until: until.toISOString() };
  }

  // MARK: The custody graph

  async loadGraph() {
    const { since, until } = this.window("graph-window");
    try {
      this.graph = await api.graph(since, until);
    } catch (error) {
      document.getElementById("graph-summary").textContent = error.message;
      return;
    }
    const { nodes, edges } = this.graph;
    document.getElementById("graph-summary").textContent =
      `${nodes.length} sources, ${edges.length} hand-offs, ${edges.reduce((n, e) => n + e.calls, 0)} calls`;
    document.getElementById("graph-edges").innerHTML = edges.map((edge, index) =>
      `<button type="button" class="graph-edge${edge.errors ? " bad" : ""}" role="listitem" data-index="${index}">` +
      `<span>${escapeHTML(edge.from)} → ${escapeHTML(edge.to)}</span><span class="num">${edge.calls}</span>` +
      `<span class="num">${edge.errors}</span><span class="num">${formatDuration(edge.p99_ms)}</span></button>`).join("") ||
      `<div class="muted">No hand-offs in this window.</div>`;
    this.drawGraph();
  }

  /** Sources on a circle, most spans first from the top; each edge a curve bent to its left, so
   *  the two directions between a pair stay apart. */
  drawGraph() {
    const canvas = document.getElementById("graph-canvas");
    if (!this.graph || canvas.clientWidth === 0) return;
    const { ctx, width, height } = fitCanvas(canvas);
    ctx.clearRect(0, 0, width, height);
    const { nodes, edges } = this.graph;
    const radius = Math.max(40, Math.min(width, height) / 2 - 70);
    const most = Math.max(1, ...nodes.map((n) => n.spans));
    const place = new Map(nodes.map((node, i) => {
      const angle = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, nodes.length);
      return [node.source, { x: width / 2 + radius * Math.cos(angle), y: height / 2 + radius * Math.sin(angle), r: 8 + 18 * Math.sqrt(node.spans / most), node }];
    }));
    const calls = Math.max(1, ...edges.map((e) => e.calls));
    this.layout = [];
    for (const edge of edges) {
      const a = place.get(edge.from), b = place.get(edge.to);
      if (!a || !b) continue;
      const dx = b.x - a.x, dy = b.y - a.y, length = Math.hypot(dx, dy) || 1;
      const control = { x: (a.x + b.x) / 2 - (dy / length) * 28, y: (a.y + b.y) / 2 + (dx / length) * 28 };
      const share = edge.errors / Math.max(1, edge.calls);
      ctx.strokeStyle = share > 0 ? `rgba(244, 67, 54, ${0.45 + 0.55 * Math.min(1, share * 5)})` : "rgba(0, 188, 212, 0.7)";
      ctx.lineWidth = 1 + 5 * Math.log1p(edge.calls) / Math.log1p(calls);
      ctx.beginPath();
      ctx.moveTo(a.x, a.y);
      ctx.quadraticCurveTo(control.x, control.y, b.x, b.y);
      ctx.stroke();
      // The arrowhead where the curve meets the target's circle.
      const t = 1 - b.r / Math.max(b.r + 1, length);
      const point = { x: (1 - t) ** 2 * a.x + 2 * (1 - t) * t * control.x + t * t * b.x, y: (1 - t) ** 2 * a.y + 2 * (1 - t) * t * control.y + t * t * b.y };
      const angle = Math.atan2(b.y - control.y, b.x - control.x);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.beginPath();
      ctx.moveTo(point.x, point.y);
      ctx.lineTo(point.x - 10 * Math.cos(angle - 0.4), point.y - 10 * Math.sin(angle - 0.4));
      ctx.lineTo(point.x - 10 * Math.cos(angle + 0.4), point.y - 10 * Math.sin(angle + 0.4));
      ctx.fill();
      this.layout.push({ edge, x: 0.25 * a.x + 0.5 * control.x + 0.25 * b.x, y: 0.25 * a.y + 0.5 * control.y + 0.25 * b.y });
    }
    ctx.font = "12px Inter, system-ui, sans-serif";
    ctx.textAlign = "center";
    for (const { x, y, r, node } of place.values()) {
      ctx.fillStyle = node.errors ? "#5d1f1c" : "#1d3b42";
      ctx.strokeStyle = node.errors ? "#f44336" : "#00bcd4";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
      ctx.fillStyle = "#e6e8ee";
      const below = y >= height / 2;
      ctx.fillText(node.source, x, below ? y + r + 15 : y - r - 7);
      ctx.fillStyle = "#8a93a6";
      ctx.fillText(`${node.spans} spans · p99 ${formatDuration(node.p99_ms)}`, x, below ? y + r + 29 : y - r - 21);
    }
  }

  edgeAt(event) {
    const box = event.target.getBoundingClientRect();
    const x = event.clientX - box.left, y = event.clientY - box.top;
    let best = null, distance = 14;
    for (const item of this.layout) {
      const d = Math.hypot(item.x - x, item.y - y);
      if (d < distance) { best = item.edge; distance = d; }
    }
    return best;
  }

  hover(event) {
    const tip = document.getElementById("graph-tip");
    const edge = this.edgeAt(event);
    if (!edge) { tip.hidden = true; return; }
    tip.innerHTML = `<b>${escapeHTML(edge.from)} → ${escapeHTML(edge.to)}</b><br>${edge.calls} calls · ${edge.errors} errors<br>` +
      `p50 ${formatDuration(edge.p50_ms)} · p99 ${formatDuration(edge.p99_ms)}<br><span class="muted">click: its traces</span>`;
    const box = event.target.getBoundingClientRect();
    tip.style.left = `${event.clientX - box.left + 12}px`;
    tip.style.top = `${event.clientY - box.top + 12}px`;
    tip.hidden = false;
  }

  /** The traces of a hand-off: the query language's `{from} > {to}` over the graph's window. */
  async listEdge(edge) {
    const quote = (text) => JSON.stringify(text);
    const query = `{ source = ${quote(edge.from)} } > { source = ${quote(edge.to)} }`;
    const list = document.getElementById("graph-traces");
    list.innerHTML = `<div class="muted">${escapeHTML(query)} …</div>`;
    try {
      const { since } = this.window("graph-window");
      const { traces } = await api.queryTraces(query, since, 20);
      list.innerHTML = `<div class="list-head">${escapeHTML(edge.from)} → ${escapeHTML(edge.to)}: newest traces</div>` + traceRows(traces);
    } catch (error) {
      list.innerHTML = `<div class="query-error">${escapeHTML(error.message)}</div>`;
    }
  }

  // MARK: The query box

  async run() {
    const text = document.getElementById("query-input").value.trim();
    const failure = document.getElementById("query-error");
    const results = document.getElementById("query-results");
    const chart = document.getElementById("query-chart");
    failure.hidden = true;
    if (!text) return;
    const { since, until } = this.window("query-window");
    try {
      if (METRIC.test(text)) {
        this.series = await api.metrics(text, since, until);
        chart.hidden = false;
        results.innerHTML = "";
        this.drawSeries();
      } else {
        const { traces, next_cursor: more } = await api.queryTraces(text, since, 50);
        this.series = null;
        chart.hidden = true;
        document.getElementById("query-legend").innerHTML = "";
        results.innerHTML = `<div class="list-head">${traces.length} trace${traces.length === 1 ? "" : "s"}${more ? " (more: narrow the query)" : ""}</div>` + traceRows(traces);
      }
    } catch (error) {
      failure.textContent = error.message;
      failure.hidden = false;
    }
  }

  drawSeries() {
    const canvas = document.getElementById("query-chart");
    if (!this.series || canvas.hidden || canvas.clientWidth === 0) return;
    const { ctx, width, height } = fitCanvas(canvas);
    ctx.clearRect(0, 0, width, height);
    const series = this.series.series;
    const points = series.flatMap((s) => s.points);
    const legend = document.getElementById("query-legend");
    if (!points.length) { legend.innerHTML = `<span class="muted">No spans match in this window.</span>`; return; }
    const t0 = Date.parse(this.series.since) / 1000, t1 = Date.parse(this.series.until) / 1000;
    const top = Math.max(...points.map((p) => p[1])) || 1;
    const left = 48, bottom = height - 22;
    ctx.strokeStyle = "#252a35";
    ctx.fillStyle = "#8a93a6";
    ctx.font = "11px ui-monospace, monospace";
    for (let i = 0; i <= 4; i++) {
      const y = bottom - ((bottom - 10) * i) / 4;
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(width - 8, y); ctx.stroke();
      ctx.fillText(String(+(top * i / 4).toPrecision(3)), 4, y + 4);
    }
    const x = (t) => left + ((t - t0) / Math.max(1, t1 - t0)) * (width - left - 8);
    series.forEach((s, index) => {
      ctx.strokeStyle = SERIES_COLOURS[index % SERIES_COLOURS.length];
      ctx.lineWidth = 2;
      ctx.beginPath();
      s.points.forEach(([t, v], i) => { const y = bottom - (v / top) * (bottom - 10); if (i) ctx.lineTo(x(t), y); else ctx.moveTo(x(t), y); });
      ctx.stroke();
    });
    ctx.fillText(new Date(t0 * 1000).toISOString().slice(11, 19), left, height - 6);
    ctx.textAlign = "right";
    ctx.fillText(new Date(t1 * 1000).toISOString().slice(11, 19), width - 8, height - 6);
    ctx.textAlign = "left";
    legend.innerHTML = series.map((s, index) => {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${v}"`).join(", ") || "all";
      const last = s.points.length ? s.points[s.points.length - 1][1] : 0;
      return `<span class="series" style="--c:${SERIES_COLOURS[index % SERIES_COLOURS.length]}">{${escapeHTML(labels)}} <span class="muted">last ${+last.toPrecision(3)}</span></span>`;
    }).join("");
  }
}

function traceRows(traces) {
  if (!traces.length) return `<div class="muted">No trace matches.</div>`;
  return traces.map((t) =>
    `<button type="button" class="query-trace" data-trace="${escapeHTML(t.trace_id)}"><code>${escapeHTML(t.trace_id)}</code>` +
    `<span>${escapeHTML(t.root_operation)}</span><span class="num">${t.span_count} spans</span>` +
    `<span class="num${t.error_count ? " bad" : ""}">${t.error_count} errors</span><span class="num">${formatDuration(t.duration_ms)}</span></button>`).join("");
}
