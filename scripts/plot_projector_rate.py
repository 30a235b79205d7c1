"""Draws docs/plots/projector-rate.png: the projector's rate while catching up a 15,000,000-event
log from nothing, before and after trace_keys was written in bulk (docs/benchmarks.md, P2). The
figures are copied by hand from that section's table when they are measured again: the
checkpoint's applied_seq sampled every 5 s during `custody bench startup` with the projections
deleted."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

# events/s over each 5 s interval
KEY_INDEX = [340_800, 279_400, 258_400, 247_200, 234_900, 240_610, 240_589, 225_910, 224_589, 216_300, 216_100, 207_300]
BULK_KEYS = [400_300, 359_300, 364_500, 353_700, 372_600, 355_500, 336_800, 370_700]
TARGET = 250_000

fig, axis = plt.subplots(figsize=(8, 4))
for label, rates in [("index on trace_summaries (trace_key)", KEY_INDEX), ("trace_keys written in bulk", BULK_KEYS)]:
    applied, xs = 0, []
    for rate in rates:
        applied += rate * 5
        xs.append(applied / 1e6)
    axis.plot(xs, [r / 1e3 for r in rates], marker="o", label=label)
axis.axhline(TARGET / 1e3, color="red", linestyle="--", linewidth=1, label="P2: 250,000 spans/s")
axis.set_xlabel("events applied (millions)")
axis.set_ylabel("thousand events/s (5 s intervals)")
axis.set_title("Projector catching up a 15 M-event log, 8 spans per trace")
axis.set_ylim(0, 450)
axis.legend(fontsize=8)
axis.grid(alpha=0.3)
fig.tight_layout()
fig.savefig("docs/plots/projector-rate.png", dpi=110)
