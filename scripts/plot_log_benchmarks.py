"""Draws docs/plots/log-append.png from the figures in docs/benchmarks.md's table (medians of
`make benchmarks`, copied by hand into FIGURES below when they are measured again)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# events/s (median of 10 iterations), 256 B span JSON, 100 events per append
FIGURES = {
    "fsync always": {1: 448_000, 8: 1_279_000, 64: 2_947_000},
    "fsync never": {1: 1_524_000, 8: 3_377_000, 64: 3_635_000},
}
SINGLE = {"64 appenders × 1/append, always": 168_000, "1 appender × 1/append, always": 6_015}
SQLITE = 7_359  # one INSERT per event, WAL, synchronous=FULL, same run
TARGET = 1_000_000

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
for label, points in FIGURES.items():
    xs = sorted(points)
    left.plot(xs, [points[x] / 1e6 for x in xs], marker="o", label=label)
left.axhline(TARGET / 1e6, color="red", linestyle="--", linewidth=1, label="P1 target (1 M/s, fsync always)")
left.set_xscale("log", base=2)
left.set_xticks([1, 8, 64], ["1", "8", "64"])
left.set_xlabel("concurrent appenders (100 events per append)")
left.set_ylabel("million events/s")
left.set_title("Segment log append, 256 B events")
left.legend(fontsize=8)
left.grid(alpha=0.3)

labels = ["log 64×100\nalways", "log 64×1\nalways", "log 1×1\nalways", "SQLite\n1 INSERT/event"]
values = [FIGURES["fsync always"][64], SINGLE["64 appenders × 1/append, always"], SINGLE["1 appender × 1/append, always"], SQLITE]
bars = right.bar(labels, values, color=["#2b7bba", "#6fa8dc", "#a9c8e8", "#999999"])
right.set_yscale("log")
right.set_ylabel("events/s (log scale)")
right.set_title("Durable appends vs the SQLite baseline")
for bar, value in zip(bars, values):
    right.text(bar.get_x() + bar.get_width() / 2, value * 1.15, f"{value:,.0f}", ha="center", fontsize=8)
right.set_ylim(1_000, 10_000_000)
fig.tight_layout()
fig.savefig("docs/plots/log-append.png", dpi=110)
print("wrote docs/plots/log-append.png")
