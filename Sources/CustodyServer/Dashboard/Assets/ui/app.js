// Mission Control: wires the store, the live connection and the views together.
import { api } from "./api.js";
import { LiveConnection } from "./live.js";
import { SpanStore } from "./store.js";
import { Timeline } from "./timeline.js";
import { Feed } from "./feed.js";
import { Details } from "./details.js";
import { Metrics } from "./metrics.js";
import { ReplayConsole } from "./replay.js";
import { Analysis } from "./analysis.js";
import { TraceViews } from "./tree.js";
import { STAGE_COLOURS, escapeHTML, toast } from "./util.js";

const $ = (id) => document.getElementById(id);
const store = new SpanStore();
const filters = { source: "", stage: "", operation: "", query: "" };
let paused = false, pausedArrivals = 0, selected = null, selectedSpans = [], selectedPath = null;

const spanFilter = (s) =>
  (!filters.source || s.source === filters.source) && (!filters.stage || s.stage === filters.stage) && (!filters.operation || s.operation === filters.operation);
const traceFilter = (t) =>
  (!filters.source || t.sources.has(filters.source)) && (!filters.stage || t.stages.has(filters.stage)) &&
  (!filters.operation || t.operations.has(filters.operation)) &&
  (!filters.query || t.id.includes(filters.query) || t.root.toLowerCase().includes(filters.query.toLowerCase()) ||
    [...t.sources].some((s) => s.includes(filters.query)));

const timeline = new Timeline($("timeline"), $("tooltip"), {
  onSelect: (span) => selectTrace(span.trace_id),
  onFollowChange: (follow) => ($("follow").checked = follow),
});
timeline.filter = spanFilter;
const feed = new Feed($("feed"), $("feed-count"), { onSelect: (id) => selectTrace(id) });
feed.filter = traceFilter;
const details = new Details({ onReplay: (id) => { replay.prefill(id); showTab("replay"); $("replay-trace").focus(); }, onClose: () => backToLive() });
const replay = new ReplayConsole({ onView: (id) => { showTab("details"); selectTrace(id); } });
new Metrics(store, { onSource: (source) => { $("filter-source").value = source; setFilter("source", source); } });

// Legend.
const shown = ["request_received", "processing", "response_sent", "before_rpc", "after_rpc", "before_call", "after_call", "error", "replay_span_end", "sim_replay"];
$("legend").innerHTML = shown.map((stage) => `<span style="--c:${STAGE_COLOURS[stage]}">${stage}</span>`).join("");

// Filters and search.
function setFilter(name, value) {
  filters[name] = value;
  timeline.invalidate();
  feed.update(store.traces, { force: true });
}
for (const name of ["source", "stage", "operation"]) $(`filter-${name}`).addEventListener("change", (event) => setFilter(name, event.target.value));
$("search").addEventListener("input", (event) => setFilter("query", event.target.value.trim()));
$("search").addEventListener("keydown", async (event) => {
  if (event.key !== "Enter") return;
  const query = event.target.value.trim();
  if (!query) return;
  if (query.startsWith("{")) return analysis.open("query", query);
  if (store.traces.has(query)) return selectTrace(query);
  try {
    const { traces } = await api.search(query);
    if (traces.length) selectTrace(traces[0].trace_id);
    else toast(`No trace matches “${query}”.`);
  } catch (error) { toast(error.message); }
});
function refreshFilterOptions() {
  for (const [name, values] of [["source", store.sources], ["stage", store.stages], ["operation", store.operations]]) {
    const select = $(`filter-${name}`);
    if (select.options.length - 1 === values.size) continue;
    const current = select.value;
    select.innerHTML = `<option value="">all</option>` + [...values].sort().slice(0, 500).map((v) => `<option>${escapeHTML(v)}</option>`).join("");
    select.value = current;
  }
}

// Pause / resume: rendering stops, arrivals are counted, everything shows on resume.
$("pause").onclick = () => {
  paused = !paused;
  timeline.paused = paused;
  $("pause").setAttribute("aria-pressed", String(paused));
  if (!paused) { pausedArrivals = 0; timeline.invalidate(); feed.update(store.traces, { force: true }); }
  $("pause").textContent = paused ? "Resume" : "Pause";
};

// Timeline tools.
$("zoom-in").onclick = () => timeline.zoom(1 / 1.5);
$("zoom-out").onclick = () => timeline.zoom(1.5);
$("zoom-reset").onclick = () => timeline.fit();
$("to-error").onclick = () => { if (!timeline.nextError()) toast("No error span in view."); };
$("follow").onchange = (event) => timeline.setFollow(event.target.checked && timeline.mode === "live");
$("back-live").onclick = () => backToLive();

// Tabs.
function showTab(name) {
  for (const tab of ["details", "replay"]) {
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(tab).hidden = tab !== name;
  }
}
$("tab-details").onclick = () => showTab("details");
$("tab-replay").onclick = () => showTab("replay");
document.querySelector(".tabs").addEventListener("keydown", (event) => {
  if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
    const next = $("tab-details").getAttribute("aria-selected") === "true" ? "replay" : "details";
    showTab(next); $(`tab-${next}`).focus();
  }
});

// Esc closes the topmost panel.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  if (traceViews.isOpen) { traceViews.close(); $("details-tree").focus(); }
  else if (analysis.isOpen) analysis.close();
  else if (!$("compare-view").hidden) replay.closeCompare();
  else if (!$("history").hidden) replay.closeHistory();
  else if (selected) backToLive();
});

// The analysis overlay: the custody graph and the query box.
const analysis = new Analysis({ openTrace: (id) => selectTrace(id) });

// The span tree and the flame graph of the selected trace; a span chosen there is inspected in the
// details panel, and the waterfall under it is not drawn while it is open.
const traceViews = new TraceViews({
  onSelect: (span) => details.inspect(span),
  onOpenChange: (open) => { timeline.covered = open; if (!open) timeline.invalidate(); },
});
$("details-tree").onclick = () => { if (selected) traceViews.open(selected, selectedSpans, criticalOn ? selectedPath : null); };

// Selecting a trace: its spans in the timeline and the details panel.
let reading = false, lastRead = { at: 0, ms: 0 };
async function selectTrace(id) {
  selected = id;
  feed.select(id);
  replay.prefill(id);
  try {
    const began = performance.now();
    reading = true;
    const trace = await api.trace(id).finally(() => { reading = false; });
    lastRead = { at: performance.now(), ms: performance.now() - began };
    if (selected !== id) return;
    const spans = details.show(trace);
    selectedSpans = spans;
    selectedPath = null;
    if (traceViews.isOpen) traceViews.setTrace(id, spans, null);
    showTab("details");
    timeline.selectedTrace = id;
    timeline.showTrace(spans);
    $("timeline-title").textContent = "Trace";
    $("timeline-info").textContent = `${id} · ${spans.length} spans`
      + (trace.retention ? ` · spans before seq ${trace.retention.first_seq} deleted by retention` : "");
    $("back-live").hidden = false;
    if (spans.some((s) => s.error)) timeline.nextError();
    showVerification(id);
    if (criticalOn) showCriticalPath(id);
  } catch (error) {
    toast(`Trace ${id}: ${error.message}`);
  }
}

// The critical-path toggle: on, the selected trace's path is highlighted in the waterfall and the
// table, with its time by source; it stays on for the next trace opened.
let criticalOn = false;
$("details-critical").onclick = () => {
  criticalOn = !criticalOn;
  $("details-critical").setAttribute("aria-pressed", String(criticalOn));
  if (criticalOn && selected) showCriticalPath(selected);
  if (!criticalOn) { details.setCriticalPath(null); timeline.setCriticalPath(null); traceViews.setCriticalPath(null); }
};

async function showCriticalPath(id) {
  try {
    const path = await api.criticalPath(id);
    if (selected !== id || !criticalOn) return;
    selectedPath = path;
    details.setCriticalPath(path);
    timeline.setCriticalPath(path);
    if (traceViews.isOpen) traceViews.setCriticalPath(path);
  } catch (error) {
    toast(`Critical path of ${id}: ${error.message}`);
  }
}

// The "verified" mark: the trace's spans checked against the signed checkpoints. A trace newer
// than the newest checkpoint is checked again until one covers it (one is written within 10 s).
async function showVerification(id) {
  const mark = $("details-verified");
  mark.textContent = "checking…";
  mark.className = "";
  for (let attempt = 0; attempt < 12 && selected === id; attempt++) {
    try {
      const v = await api.verification(id);
      if (selected !== id) return;
      if (v.verified) {
        const last = v.checkpoints[v.checkpoints.length - 1];
        mark.textContent = `✓ verified · ${v.spans} spans under checkpoint ${last.seq} (key ${last.key_id})`;
        mark.className = "verified";
        return;
      }
      mark.textContent = `not yet verified: ${v.problem || "no checkpoint covers it"}`;
      mark.className = "unverified";
    } catch (error) {
      mark.textContent = `not verified: ${error.message}`;
      mark.className = "unverified";
    }
    await new Promise((done) => setTimeout(done, 5000));
  }
}

function backToLive() {
  selected = null;
  selectedSpans = [];
  traceViews.close();
  feed.select(null);
  details.hide();
  timeline.selectedTrace = null;
  timeline.showLive(store.spans);
  $("timeline-title").textContent = "Live timeline";
  $("timeline-info").textContent = "";
  $("back-live").hidden = true;
}

// Arrivals.
let feedTimer = null, selectedTouched = false;
function onSpans(batch) {
  const touched = store.add(batch);
  if (selected) for (const t of touched) if (t.id === selected) selectedTouched = true;
  if (paused) {
    pausedArrivals += batch.length;
    $("pause").textContent = `Resume (+${pausedArrivals.toLocaleString()})`;
    return;
  }
  // A trace shown in the waterfall does not change with arrivals (it is read again instead).
  if (timeline.mode === "live") timeline.invalidate();
  if (!feedTimer) feedTimer = setTimeout(() => { feedTimer = null; feed.update(store.traces); refreshFilterOptions(); }, 250);
}
// The selected trace is read again when spans of it arrive: every 1.5 s, or for a large trace no
// sooner than four times its last read took, and never while a read is under way.
setInterval(() => {
  if (!selected || !selectedTouched || paused || reading) return;
  if (performance.now() - lastRead.at < 4 * lastRead.ms) return;
  selectedTouched = false;
  selectTrace(selected);
}, 1500);

// The rate shown in the header, and the count the tests read.
let lastReceived = 0;
setInterval(() => {
  $("rate").textContent = `${(store.received - lastReceived).toLocaleString()} spans/s`;
  lastReceived = store.received;
  document.body.dataset.received = String(store.received);
  if (!paused) feed.list.refresh();
}, 1000);

// The retained range in the header, once retention has deleted anything (needs the admin role:
// hidden otherwise).
async function showRetainedRange() {
  try {
    const { retention } = await api.stats();
    const label = $("retained");
    if (!retention || retention.first_seq <= 1) { label.hidden = true; return; }
    const since = retention.first_at ? new Date(retention.first_at).toLocaleString() : "";
    label.textContent = `retained from seq ${retention.first_seq.toLocaleString()}`;
    label.title = `Retention keeps the log from ${since}; ${retention.deleted_events.toLocaleString()} events deleted`;
    label.hidden = false;
  } catch (error) {
    $("retained").hidden = true;
  }
}
showRetainedRange();
setInterval(showRetainedRange, 30000);

function setConnection(state) {
  const labels = { live: "Live", reconnecting: "Reconnecting", disconnected: "Disconnected" };
  $("conn").className = `conn ${state}`;
  $("conn-state").textContent = labels[state];
}

async function start() {
  timeline.showLive(store.spans);
  let lastSeq = null;
  try {
    const { spans } = await api.active(2000);
    spans.sort((a, b) => a.seq - b.seq);
    store.add(spans);
    lastSeq = store.lastSeq;
    feed.update(store.traces);
    refreshFilterOptions();
  } catch (error) {
    toast(`The active traces could not be read: ${error.message}`);
  }
  const live = new LiveConnection({
    onSpans,
    onState: setConnection,
    onLagged: (dropped) => toast(`The stream skipped ${dropped} spans (this page fell behind).`),
  });
  live.start(lastSeq);
}
start();
