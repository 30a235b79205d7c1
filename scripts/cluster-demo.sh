#!/usr/bin/env bash
# Cluster mode on one machine (docs/operations.md, "Cluster mode"): three nats-server processes
# with JetStream, clustered on loopback, and two Custody nodes on one replicated stream (R3).
# Everything lives under ${CLUSTER_DIR:-./custody-cluster}; Ctrl-C stops all five processes.
set -euo pipefail
CUSTODY=${CUSTODY:-.build/release/custody}
DIR=${CLUSTER_DIR:-./custody-cluster}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
pids=()
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT INT TERM
routes='"nats-route://127.0.0.1:6248", "nats-route://127.0.0.1:6249", "nats-route://127.0.0.1:6250"'
for i in 0 1 2; do
  cat >"$DIR/nats-$i.conf" <<CONF
server_name: js$i
listen: 127.0.0.1:$((4222 + i))
http: 127.0.0.1:$((8222 + i))
max_payload: 8MB
jetstream { store_dir: "$DIR/nats-$i" }
cluster { name: custody, listen: 127.0.0.1:$((6248 + i)), routes: [$routes] }
CONF
  nats-server --config "$DIR/nats-$i.conf" >"$DIR/nats-$i.log" 2>&1 &
  pids+=($!)
done
LOG=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
# Both nodes sign checkpoints with one key (the lease holder signs): copy it to every machine.
for node in a b; do
  port=$([ $node = a ] && echo 8787 || echo 8797)
  "$CUSTODY" serve --log "$LOG" --node-name "$node" --data-dir "$DIR/custody-$node" \
    --signing-key "$DIR/cluster.signing-key" --port "$port" --rpc-port $((port + 1)) \
    --otlp-grpc-port 0 --otlp-http-port 0 2>"$DIR/custody-$node.log" | sed -u "s/^/[$node] /" &
  pids+=($!)
  # The first node creates the stream and the key; the second finds them.
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.2; done
done
echo "Cluster up: nodes a (http://127.0.0.1:8787/) and b (http://127.0.0.1:8797/) on stream CUSTODY, R3 over js0..js2."
echo "Try: $CUSTODY cluster status --server http://127.0.0.1:8797   (Ctrl-C stops everything)"
wait
