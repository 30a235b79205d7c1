"""Draws docs/plots/bench-compare.png from the JSON `custody bench compare --json FILE` writes:
every system's events/s per job, Custody's bars first, on a log scale."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker

source, target = sys.argv[1], sys.argv[2]
report = json.load(open(source))
jobs = [("append", "Durable appends, 256 B events"), ("project", "Projections of the same spans")]
fig, axes = plt.subplots(1, 2, figsize=(13, 4.4), gridspec_kw={"width_ratios": [5, 3]})
for axis, (job, title) in zip(axes, jobs):
    figures = [f for f in report["figures"] if f["job"] == job]
    labels = [f["system"].replace(", ", ",\n", 2) for f in figures]
    values = [f["per_second"] for f in figures]
    colours = ["#2f6fb3" if f["system"].startswith("Custody") else "#9a9a9a" for f in figures]
    bars = axis.barh(range(len(figures)), values, color=colours)
    axis.set_yticks(range(len(figures)), labels, fontsize=7)
    axis.invert_yaxis()
    if job == "append":
        axis.set_xscale("log")
        axis.set_xlim(left=min(values) / 3, right=max(values) * 6)
        axis.set_xlabel("events/s (log scale)")
    else:
        axis.set_xlim(0, max(values) * 1.3)
        axis.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value / 1000:.0f}k"))
        axis.set_xlabel("events/s")
    axis.set_title(title, fontsize=10)
    for bar, value in zip(bars, values):
        axis.text(value * (1.05 if job == "append" else 1.01), bar.get_y() + bar.get_height() / 2, f"{value:,.0f}", va="center", fontsize=7)
    axis.grid(axis="x", alpha=0.3)
fig.suptitle("custody bench compare — one run, one 2-core machine (blue: Custody)", fontsize=11)
fig.tight_layout()
fig.savefig(target, dpi=110)
print(f"plot written to {target}")
