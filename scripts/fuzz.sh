#!/usr/bin/env bash
# libFuzzer on Custody's decoders (docs/benchmarks.md R6): the streaming span parser of POST /api/logs,
# the event codec of log records, and the OTLP protobuf decoder against SwiftProtobuf (a difference
# traps). Each runs for FUZZ_SECONDS (default 600) from a small seed corpus kept in
# .build/fuzz-corpus (FUZZ_ONLY=otlp runs one); a crash leaves its input in the current directory and fails.
set -euo pipefail
cd "$(dirname "$0")/../Fuzz"
swift build -c release -Xswiftc -sanitize=fuzzer
SECONDS_EACH=${FUZZ_SECONDS:-600}
CORPUS=../.build/fuzz-corpus
mkdir -p "$CORPUS/span" "$CORPUS/event" "$CORPUS/otlp"
echo '[{"trace_id":"a","span_id":"b","source":"s","duration_ms":1.5,"details":{"k":[1,"x\u00e9",null]}}]' > "$CORPUS/span/seed-list"
echo '{"entries":[{"stage":"error","timestamp":"2026-11-25T00:00:00.123+02:00","details":{"error":"e"}}]}' > "$CORPUS/span/seed-entries"
# OTLP seeds: export requests as the SDKs write them (one of the bench's, and a small hand-made one).
printf '\x0a\x2f\x12\x2d\x12\x2b\x0a\x10\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x12\x08\x01\x02\x03\x04\x05\x06\x07\x08\x2a\x01\x73\x4a\x0a\x0a\x01\x6b\x12\x05\x0a\x03\x61\x62\x63' > "$CORPUS/otlp/seed-span"
ONLY=${FUZZ_ONLY:-all}
if [ "$ONLY" = all ] || [ "$ONLY" = span ]; then
  .build/release/SpanParserFuzz "$CORPUS/span" -max_total_time="$SECONDS_EACH" -max_len=8192 -print_final_stats=1
fi
if [ "$ONLY" = all ] || [ "$ONLY" = event ]; then
  .build/release/EventCodecFuzz "$CORPUS/event" -max_total_time="$SECONDS_EACH" -max_len=8192 -print_final_stats=1
fi
if [ "$ONLY" = all ] || [ "$ONLY" = otlp ]; then
  .build/release/OTLPDecoderFuzz "$CORPUS/otlp" -max_total_time="$SECONDS_EACH" -max_len=16384 -print_final_stats=1
fi
