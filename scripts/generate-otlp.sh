#!/usr/bin/env bash
# Regenerates Sources/CustodyOTLP/Generated from schema/otlp/*.proto with Debian's protoc and
# protoc-gen-swift built from the swift-protobuf version Package.swift resolves (not a build
# plugin, which would compile protoc itself on every clean build). The output is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc > /dev/null || { echo "needs protoc: sudo apt-get install -y protobuf-compiler"; exit 1; }
VERSION=${SWIFT_PROTOBUF_VERSION:-1.39.0}
WORK=.build/protoc-gen-swift-$VERSION
if [ ! -x "$WORK/.build/release/protoc-gen-swift" ]; then
  rm -rf "$WORK"
  git clone -q --depth 1 --branch "$VERSION" "${SWIFT_PROTOBUF_URL:-https://github.com/apple/swift-protobuf.git}" "$WORK"
  (cd "$WORK" && swift build -c release --product protoc-gen-swift)
fi
OUT=Sources/CustodyOTLP/Generated
rm -rf "$OUT" && mkdir -p "$OUT"
protoc --plugin=protoc-gen-swift="$WORK/.build/release/protoc-gen-swift" \
  --swift_out="$OUT" --swift_opt=Visibility=Public \
  -I schema/otlp schema/otlp/common.proto schema/otlp/resource.proto schema/otlp/trace.proto schema/otlp/trace_service.proto schema/otlp/status.proto
echo "generated: $(ls "$OUT")"
