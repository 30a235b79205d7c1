#!/usr/bin/env bash
# Regenerates Sources/CustodyRPC/Generated from schema/custody.proto with Debian's protoc,
# protoc-gen-swift (swift-protobuf) and protoc-gen-grpc-swift-2 (grpc-swift-protobuf), each built
# once with `swift build --product` from the versions Package.swift resolves — not the SwiftPM
# build plugins, which compile protoc itself on every clean build. The output is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc > /dev/null || { echo "needs protoc: sudo apt-get install -y protobuf-compiler"; exit 1; }
PROTOBUF_VERSION=${SWIFT_PROTOBUF_VERSION:-1.39.0}
GRPC_PROTOBUF_VERSION=${GRPC_SWIFT_PROTOBUF_VERSION:-2.4.1}
SWIFT_PLUGIN=.build/protoc-gen-swift-$PROTOBUF_VERSION
GRPC_PLUGIN=.build/protoc-gen-grpc-swift-$GRPC_PROTOBUF_VERSION
if [ ! -x "$SWIFT_PLUGIN/.build/release/protoc-gen-swift" ]; then
  rm -rf "$SWIFT_PLUGIN"
  git clone -q --depth 1 --branch "$PROTOBUF_VERSION" "${SWIFT_PROTOBUF_URL:-https://github.com/apple/swift-protobuf.git}" "$SWIFT_PLUGIN"
  (cd "$SWIFT_PLUGIN" && swift build -c release --product protoc-gen-swift)
fi
if [ ! -x "$GRPC_PLUGIN/.build/release/protoc-gen-grpc-swift-2" ]; then
  rm -rf "$GRPC_PLUGIN"
  git clone -q --depth 1 --branch "$GRPC_PROTOBUF_VERSION" "${GRPC_SWIFT_PROTOBUF_URL:-https://github.com/grpc/grpc-swift-protobuf.git}" "$GRPC_PLUGIN"
  (cd "$GRPC_PLUGIN" && swift build -c release --product protoc-gen-grpc-swift-2)
fi
OUT=Sources/CustodyRPC/Generated
rm -rf "$OUT" && mkdir -p "$OUT"
protoc --plugin=protoc-gen-swift="$SWIFT_PLUGIN/.build/release/protoc-gen-swift" \
  --plugin=protoc-gen-grpc-swift-2="$GRPC_PLUGIN/.build/release/protoc-gen-grpc-swift-2" \
  --swift_out="$OUT" --swift_opt=Visibility=Public \
  --grpc-swift-2_out="$OUT" --grpc-swift-2_opt=Visibility=Public \
  -I schema schema/custody.proto
echo "generated: $(ls "$OUT")"
