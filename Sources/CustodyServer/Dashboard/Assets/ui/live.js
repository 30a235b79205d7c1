// The live stream: a WebSocket that reconnects by itself with backoff and resumes after the last
// seq it delivered (since_seq), so no span is missed and none is delivered twice.
import { api } from "./api.js";

export class LiveConnection {
  /** onSpans(batch) gets spans in seq order; onState("live" | "reconnecting" | "disconnected"). */
  constructor({ onSpans, onState, onLagged }) {
    this.onSpans = onSpans;
    this.onState = onState;
    this.onLagged = onLagged;
    this.lastSeq = null;
    this.attempt = 0;
    this.pending = [];
    this.flushScheduled = false;
  }

  start(lastSeq) {
    this.lastSeq = lastSeq;
    this.connect();
  }

  connect() {
    const socket = new WebSocket(api.liveURL(this.lastSeq));
    this.socket = socket;
    socket.onopen = () => { this.attempt = 0; this.onState("live"); };
    socket.onmessage = (message) => {
      let event;
      try { event = JSON.parse(message.data); } catch { return; }
      // Batched frames ({"event": "traces", "data": [...]}); single spans from an older server.
      const spans = event.event === "traces" && Array.isArray(event.data) ? event.data
        : event.event === "trace" && event.data ? [event.data] : null;
      if (spans) {
        for (const span of spans) {
          if (this.lastSeq !== null && span.seq <= this.lastSeq) continue;
          this.lastSeq = span.seq;
          this.pending.push(span);
        }
        // Spans are handed over once per animation frame, however many arrive.
        if (this.pending.length && !this.flushScheduled) {
          this.flushScheduled = true;
          if (document.hidden) setTimeout(() => this.flush(), 250);
          else requestAnimationFrame(() => this.flush());
        }
      } else if (event.event === "lagged") {
        this.onLagged?.(event.dropped ?? 0);
      }
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.attempt += 1;
      this.onState(this.attempt > 6 ? "disconnected" : "reconnecting");
      const delay = Math.min(15000, 500 * 2 ** Math.min(this.attempt, 5)) * (0.75 + Math.random() / 2);
      setTimeout(() => this.connect(), delay);
    };
    socket.onerror = () => socket.close();
  }

  flush() {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    if (batch.length) this.onSpans(batch);
  }
}
