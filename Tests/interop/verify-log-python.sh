#!/usr/bin/env bash
# Part of `make test`: scripts/verify-log.py, written from docs/log-format.md alone, verifies the
# hash chain and a receipt of a log written by a real `custody serve` (LZ4 batches, several
# segments with their dictionaries), and fails once one byte of an event is changed with its batch CRC recomputed.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=$(mktemp -d)
.build/debug/custody serve --data-dir "$DATA/data" --port 0 --rpc-port 0 --otlp-grpc-port 0 --otlp-http-port 0 --segment-bytes 65536 \
  > "$DATA/out" 2> "$DATA/err" &
SERVER=$!
trap 'kill $SERVER 2> /dev/null || true; wait $SERVER 2> /dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do
  grep -q "Custody is listening on" "$DATA/out" && break
  sleep 0.1
done
URL=$(sed -n 's/^Custody is listening on \(http:[^ ]*\)$/\1/p' "$DATA/out")
[ -n "$URL" ] || { echo "the server did not start:"; cat "$DATA/err"; exit 1; }
RECEIPT=$(python3 - "$URL" <<'PY'
import json, sys, urllib.request
for b in range(30):
    entries = [{"trace_id": "t%d" % (b % 5), "source": "agent-factory", "stage": "before_rpc", "operation": "op%d" % i,
                "details": {"note": "hello " * 8, "i": i}} for i in range(200)]
    request = urllib.request.Request(sys.argv[1] + "api/logs", data=json.dumps(entries).encode(), headers={"content-type": "application/json"})
    receipt = json.load(urllib.request.urlopen(request))["data"]["receipt"]
print("%d:%s" % (receipt["seq"], receipt["chain"]))
PY
)
kill -TERM $SERVER
wait $SERVER || true
[ "$(ls "$DATA/data"/*.log | wc -l)" -ge 2 ] || { echo "expected several segments"; exit 1; }
python3 scripts/verify-log.py "$DATA/data" --receipt "$RECEIPT" | tee "$DATA/clean"
# Segments after the first are compressed against their dictionaries (docs/log-format.md).
[ "$(ls "$DATA/data"/*.dict | wc -l)" -ge 1 ] || { echo "expected segment dictionaries"; exit 1; }
grep -Eq "\(([1-9][0-9]*) batches compressed against a dictionary\)" "$DATA/clean" || { echo "expected codec 2 batches"; exit 1; }
# One byte of the first batch's first record changed, the batch written back stored (codec 0)
# with its CRC recomputed: the chain must catch it. The first batch may be stored or compressed
# (with or without the dictionary), depending on what the server's groups held.
python3 - "$DATA/data" <<'PY'
import os, struct, sys
sys.path.insert(0, "scripts")
verify = __import__("verify-log")
path = os.path.join(sys.argv[1], sorted(f for f in os.listdir(sys.argv[1]) if f.endswith(".log"))[0])
data = bytes(open(path, "rb").read())
header = bytearray(data[0:48])
version, codec = header[4], header[5]
ulen, slen = struct.unpack_from("<I", header, 20)[0], struct.unpack_from("<I", header, 40)[0]
trailer = 32 if version >= 2 else 0
stored = data[48:48 + slen]
dictionary = verify.segment_dictionary(path) if codec == 2 else b""
payload = bytearray(stored if codec == 0 else verify.lz4_block(stored, ulen, dictionary))
assert len(payload) == ulen
payload[20] ^= 1
header[5] = 0
struct.pack_into("<I", header, 40, ulen)
rest = bytes(payload) + data[48 + slen:48 + slen + trailer]
struct.pack_into("<I", header, 44, verify.crc32c(rest, verify.crc32c(bytes(header[:44]))))
open(path, "wb").write(bytes(header) + rest + data[48 + slen + trailer:])
print("tampered: the first batch (codec %d) of %s" % (codec, os.path.basename(path)))
PY
if python3 scripts/verify-log.py "$DATA/data" > "$DATA/tampered"; then echo "the tampered log passed"; cat "$DATA/tampered"; exit 1; fi
grep -q "hash chain mismatch" "$DATA/tampered"
.build/debug/custody log verify --data-dir "$DATA/data" > "$DATA/custody-verify" && { echo "custody log verify passed the tampered log"; exit 1; }
grep -q "hash chain mismatch" "$DATA/custody-verify"
echo "verify-log.py: the untouched log and its receipt hold; the edited one fails"
