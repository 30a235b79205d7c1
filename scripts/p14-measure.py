"""P14 (docs/benchmarks.md): the custody graph for an hour and query-language searches against a
server on a `custody bench ingest --in-process --project --events 10000000 --data-dir D` log
(whose spans are stamped from 2026-11-25T06:00Z), sequential requests, p50/p99/max in ms.

    python3 scripts/p14-measure.py http://127.0.0.1:8787/ [requests]
"""
import json, sys, time, urllib.parse, urllib.request
URL = sys.argv[1]; N = int(sys.argv[2]) if len(sys.argv) > 2 else 100
since, until = "2026-11-25T06:00:00Z", "2026-11-25T07:00:00Z"
def q(text, limit=20): return f"api/traces?limit={limit}&since={since}&q=" + urllib.parse.quote(text)
cases = [
    ("graph, one hour", f"api/graph?since={since}&until={until}"),
    ('{ source = "data-factory" && duration > 100ms }', q('{ source = "data-factory" && duration > 100ms }')),
    ('{ source = "agent-factory" } > { source = "data-factory" }', q('{ source = "agent-factory" } > { source = "data-factory" }')),
    ('{ operation = "runPipeline" && .ok = true } | count() > 1', q('{ operation = "runPipeline" && .ok = true } | count() > 1')),
    ('{ source = "data-factory" && duration > 2450ms } (rare)', q('{ source = "data-factory" && duration > 2450ms }')),
]
for name, path in cases:
    times, size, found = [], 0, None
    n = N if "rare" not in name else max(3, N // 20)
    for i in range(n + 5):
        t = time.perf_counter()
        with urllib.request.urlopen(URL + path, timeout=120) as r:
            body = r.read()
        if i >= 5: times.append((time.perf_counter() - t) * 1000)
        size = len(body)
        data = json.loads(body)["data"]
        found = len(data.get("traces", data.get("edges", [])))
    times.sort()
    p = lambda f: times[min(len(times) - 1, int(f * len(times)))]
    print(f"| {name} | {found} | {p(0.5):.1f} | {p(0.99):.1f} | {times[-1]:.1f} |", flush=True)
