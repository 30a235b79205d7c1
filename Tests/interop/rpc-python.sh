#!/usr/bin/env bash
# Part of `make test`: Python's grpcio (from PyPI, in a virtualenv under .build) generates stubs
# from schema/custody.proto with grpcio-tools and calls a real `custody serve` (the debug
# build) over gRPC (rpc_python.py): tasks, logs, a trace, the live stream, errors and metadata.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=.build/grpc-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import grpc, grpc_tools" 2> /dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check grpcio grpcio-tools protobuf
fi
DATA=$(mktemp -d)
mkdir -p "$DATA/stubs"
"$VENV/bin/python" -m grpc_tools.protoc -I schema --python_out="$DATA/stubs" --grpc_python_out="$DATA/stubs" schema/custody.proto
.build/debug/custody serve --data-dir "$DATA/data" --port 0 --rpc-port 0 --otlp-grpc-port 0 --otlp-http-port 0 > "$DATA/out" 2> "$DATA/err" &
SERVER=$!
trap 'kill $SERVER 2> /dev/null || true; wait $SERVER 2> /dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do grep -qs "RPC (gRPC) is listening on" "$DATA/out" && grep -qs "Custody is listening on" "$DATA/out" && break; sleep 0.1; done
TARGET=$(sed -n 's/^RPC (gRPC) is listening on \([^ ]*\)$/\1/p' "$DATA/out")
[ -n "$TARGET" ] || { echo "the server did not start:"; cat "$DATA/err"; exit 1; }
PYTHONPATH="$DATA/stubs" "$VENV/bin/python" Tests/interop/rpc_python.py "$TARGET"
