#!/usr/bin/env bash
# make bench-compare: Custody beside what a user would pick instead, in one run
# (docs/benchmarks.md "Side by side"): `custody bench compare` starts its own nats-server and
# PostgreSQL on loopback, prints every figure and ratio and writes them to
# .build/bench-compare.json; then docs/plots/bench-compare.png is drawn from that file
# (matplotlib in .build/plot-venv, installed on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
RESULT=.build/bench-compare.json
.build/release/custody bench compare --json "$RESULT" "$@"
VENV=.build/plot-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import matplotlib" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check matplotlib
fi
"$VENV/bin/python" scripts/plot_bench_compare.py "$RESULT" docs/plots/bench-compare.png
