#!/usr/bin/env bash
# Runs schemathesis (from PyPI, in a local virtualenv) against a fresh `custody serve` with
# schema/openapi.yaml: schema-valid requests must be accepted, invalid ones refused, and no
# request may get a 5xx or stop the server (docs/benchmarks.md R6).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.build/schemathesis-venv}
[ -x "$VENV/bin/schemathesis" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q schemathesis; }
swift build -c release --product custody
DATA=$(mktemp -d)
PORT=${PORT:-8829}
.build/release/custody serve --data-dir "$DATA" --port "$PORT" --rpc-port 0 --otlp-grpc-port 0 --otlp-http-port 0 > "$DATA/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.1; done
status=0
# adminBackup writes a copy of the data directory wherever `to` points: never fuzzed.
"$VENV/bin/schemathesis" run schema/openapi.yaml --url "http://127.0.0.1:$PORT" -c all -n "${EXAMPLES:-100}" --no-color \
  --exclude-operation-id adminBackup || status=$?
kill -0 $SERVER || { echo "the server died:"; tail -50 "$DATA/server.log"; exit 1; }
exit $status
