#!/usr/bin/env bash
# Part of `make test`: the OpenTelemetry Python SDK (from PyPI, in a virtualenv under .build)
# exports to a real `custody serve` (the debug build) over OTLP/HTTP, OTLP/gRPC and Zipkin, with
# the exporters' default ports (4317, 4318), and the traces are read back (otlp_python.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.build/otel-venv
PACKAGES="opentelemetry-sdk opentelemetry-exporter-otlp-proto-http opentelemetry-exporter-otlp-proto-grpc opentelemetry-exporter-zipkin-json"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import opentelemetry.exporter.otlp.proto.http, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.zipkin.json" 2> /dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check $PACKAGES
fi
# The exporters' defaults are these ports: they must be free.
for port in 4317 4318; do
  if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then echo "port $port is in use: the OTLP interop test needs it"; exit 1; fi
done
DATA=$(mktemp -d)
# Unset the SDK's settings that would point the exporters elsewhere.
unset OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_TRACES_ENDPOINT OTEL_EXPORTER_OTLP_PROTOCOL OTEL_EXPORTER_OTLP_COMPRESSION
.build/debug/custody serve --data-dir "$DATA/data" --port 0 --rpc-port 0 > "$DATA/out" 2> "$DATA/err" &
SERVER=$!
trap 'kill $SERVER 2> /dev/null || true; wait $SERVER 2> /dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do
  grep -q "Custody is listening on" "$DATA/out" && grep -q "OTLP/gRPC is listening" "$DATA/out" && grep -q "OTLP/HTTP is listening" "$DATA/out" && break
  sleep 0.1
done
URL=$(sed -n 's/^Custody is listening on \(http:[^ ]*\)$/\1/p' "$DATA/out")
[ -n "$URL" ] || { echo "the server did not start:"; cat "$DATA/err"; exit 1; }
"$VENV/bin/python" Tests/interop/otlp_python.py "$URL"
