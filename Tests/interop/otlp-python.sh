#!/usr/bin/env bash
# Part of `make test`: the OpenTelemetry Python SDK (from PyPI, in a virtualenv under .build)
# exports to a real `custody serve` (the debug build) and the trace is read back (otlp_python.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.build/otel-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import opentelemetry.exporter.otlp.proto.http" 2> /dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check opentelemetry-sdk opentelemetry-exporter-otlp-proto-http
fi
DATA=$(mktemp -d)
.build/debug/custody serve --data-dir "$DATA/data" --port 0 --rpc-port 0 > "$DATA/out" 2> "$DATA/err" &
SERVER=$!
trap 'kill $SERVER 2> /dev/null || true; wait $SERVER 2> /dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do grep -q "Custody is listening on" "$DATA/out" && break; sleep 0.1; done
URL=$(sed -n 's/^Custody is listening on \(http:[^ ]*\)$/\1/p' "$DATA/out")
[ -n "$URL" ] || { echo "the server did not start:"; cat "$DATA/err"; exit 1; }
"$VENV/bin/python" Tests/interop/otlp_python.py "$URL"
