#!/usr/bin/env bash
# libFuzzer on Custody's decoders (docs/benchmarks.md R6): the streaming span parser of POST /api/logs and
# the event codec of log records. Each runs for FUZZ_SECONDS (default 600) from a small seed corpus
# kept in .build/fuzz-corpus; a crash leaves its input in the current directory and fails.
set -euo pipefail
cd "$(dirname "$0")/../Fuzz"
swift build -c release -Xswiftc -sanitize=fuzzer
SECONDS_EACH=${FUZZ_SECONDS:-600}
CORPUS=../.build/fuzz-corpus
mkdir -p "$CORPUS/span" "$CORPUS/event"
echo '[{"trace_id":"a","span_id":"b","source":"s","duration_ms":1.5,"details":{"k":[1,"x\u00e9",null]}}]' > "$CORPUS/span/seed-list"
echo '{"entries":[{"stage":"error","timestamp":"2026-11-25T00:00:00.123+02:00","details":{"error":"e"}}]}' > "$CORPUS/span/seed-entries"
.build/release/SpanParserFuzz "$CORPUS/span" -max_total_time="$SECONDS_EACH" -max_len=8192 -print_final_stats=1
.build/release/EventCodecFuzz "$CORPUS/event" -max_total_time="$SECONDS_EACH" -max_len=8192 -print_final_stats=1
