"""P9 (docs/benchmarks.md): samples a running server's memory every INTERVAL seconds, one line
each: seconds, RSS, what malloc holds, what of it is in use, SQLite's share (MiB), projection lag.

    python3 scripts/soak-sample.py http://127.0.0.1:8810/ [interval] [count] > samples.txt
    python3 scripts/soak-sample.py --plot docs/plots/soak-rss-trim.png "before=before.txt" "after=after.txt" …
"""
import json, sys, time, urllib.request

if sys.argv[1] == "--plot":
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.2))
    colors = ["tab:red", "tab:blue", "tab:green", "tab:purple"]
    for (label, path), color in zip((a.split("=", 1) for a in sys.argv[3:]), colors):
        rows = [line.split() for line in open(path) if line.strip()]
        t = [int(r[0]) for r in rows]
        ax.plot(t, [int(r[1]) for r in rows], color=color, label=label + ": resident")
        ax.plot(t, [int(r[3]) for r in rows], color=color, linestyle=":", linewidth=1, label=label + ": heap in use")
    ax.axhline(512, color="gray", linestyle="--", linewidth=1)
    ax.text(5, 518, "P9: 512 MiB", color="gray")
    ax.set_xlabel("seconds of P2 ingest")
    ax.set_ylabel("MiB")
    ax.set_ylim(0, 600)
    ax.legend(loc="lower right", fontsize=7)
    ax.set_title("P9 soak: resident memory and heap in use")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    sys.exit(0)

url = sys.argv[1].rstrip("/") + "/api/admin/stats"
interval = float(sys.argv[2]) if len(sys.argv) > 2 else 30
count = int(sys.argv[3]) if len(sys.argv) > 3 else 21
start = time.monotonic()
for _ in range(count):
    data = json.load(urllib.request.urlopen(url, timeout=30))["data"]
    process, mib = data["process"], 1 << 20
    print("%d %d %d %d %d %d" % (time.monotonic() - start, process["rss_bytes"] // mib, (process["heap_bytes"] or 0) // mib,
                                 (process["heap_in_use_bytes"] or 0) // mib, process["sqlite_bytes"] // mib,
                                 data["projections"]["lag_events"]), flush=True)
    time.sleep(interval)
