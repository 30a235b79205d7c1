#!/usr/bin/env python3
"""The critical path's cost beside the trace's own fetch (docs/benchmarks.md, "Critical path").

Posts traces of 1,000, 10,000 and 100,000 spans (random trees: each span's parent among the 50
before it, 8 sources, random times) to a running server, then asks GET /api/traces/{id} and
GET /api/traces/{id}/critical-path in turn and prints p50 and max of each.

    .build/release/custody serve --data-dir /tmp/cp-data --port 18787 &
    python3 scripts/bench-critical-path.py http://127.0.0.1:18787
"""
import json
import random
import statistics
import sys
import time
import urllib.request

URL = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8787"


def post(entries):
    request = urllib.request.Request(URL + "/api/logs", data=json.dumps(entries).encode(), headers={"content-type": "application/json"})
    urllib.request.urlopen(request, timeout=120).read()


def get(path):
    started = time.perf_counter()
    urllib.request.urlopen(URL + path, timeout=120).read()
    return time.perf_counter() - started


random.seed(7)
sources = [f"factory-{i}" for i in range(8)]
for count in (1000, 10000, 100000):
    trace = f"cp-{count}"
    entries = []
    for index in range(count):
        parent = None if index == 0 else f"s{random.randrange(max(0, index - 50), index)}"
        start = random.uniform(0, 1000)
        entries.append({
            "trace_id": trace, "span_id": f"s{index}", "parent_span_id": parent, "source": random.choice(sources),
            "operation": f"op{index % 40}", "duration_ms": random.uniform(0, 200),
            "timestamp": f"2026-12-05T10:00:{int(start // 1000):02d}.{int(start % 1000):03d}Z",
        })
    for first in range(0, count, 10000):
        post(entries[first:first + 10000])
    for path in (f"/api/traces/{trace}", f"/api/traces/{trace}/critical-path"):
        get(path)
        times = sorted(get(path) for _ in range(15 if count < 100000 else 7))
        print(f"{count:>7} spans  {path.split('/')[-1]:>14}: p50 {statistics.median(times) * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")
