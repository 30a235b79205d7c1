#!/usr/bin/env bash
# Part of `make test`: Mission Control in a real browser. Debian's headless Chromium, driven by
# Selenium (from PyPI, in a virtualenv under .build) through chromium-driver, against
# `custody demo` (the debug build): live spans, the connection indicator, filters, a trace with
# its spans and JSON, a dry-run replay from the console, the compare view; any JavaScript console
# error fails it. Screenshots go to .build/dashboard-screenshots (`--docs` also copies the ones
# the README shows into docs/screenshots).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v chromium > /dev/null || ! command -v chromedriver > /dev/null; then
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver > /dev/null
  elif command -v sudo > /dev/null && sudo -n true 2> /dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver > /dev/null
  fi
fi
if ! command -v chromium > /dev/null || ! command -v chromedriver > /dev/null; then
  echo "SKIPPED: the dashboard browser test needs Debian's chromium and chromium-driver (sudo apt-get install -y chromium chromium-driver)"
  exit 0
fi
VENV=.build/dashboard-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import selenium" 2> /dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check selenium
fi
DATA=$(mktemp -d)
read -r PORT WORKER_PORT < <("$VENV/bin/python" - << 'PY'
import random, socket
def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port)); return True
        except OSError:
            return False
while True:
    base = random.randint(20000, 60000)
    if all(free(p) for p in range(base, base + 6)):
        print(base, base + 1); break
PY
)
.build/debug/custody demo --data-dir "$DATA/data" --port "$PORT" --rpc-port 0 --worker-port "$WORKER_PORT" --rate 6 > "$DATA/out" 2> "$DATA/err" &
SERVER=$!
trap 'kill $SERVER 2> /dev/null || true; wait $SERVER 2> /dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do grep -q "Custody is listening on" "$DATA/out" && break; sleep 0.1; done
grep -q "Custody is listening on" "$DATA/out" || { echo "the demo did not start:"; cat "$DATA/err"; exit 1; }
"$VENV/bin/python" Tests/dashboard/dashboard_e2e.py "http://127.0.0.1:$PORT/" .build/dashboard-screenshots "$@"
