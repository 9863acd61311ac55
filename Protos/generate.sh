#!/bin/sh
# Regenerates Sources/SpyglassOutput/Generated/profile.pb.swift from Protos/profile.proto.
#
# Needs protoc (Debian: apt-get install protobuf-compiler; generated here with libprotoc 3.21.12)
# and the protoc-gen-swift plugin of the same swift-protobuf version the package depends on (1.39.0):
#   git clone https://github.com/apple/swift-protobuf.git /tmp/swift-protobuf
#   (cd /tmp/swift-protobuf && git checkout 1.39.0 && swift build -c release --product protoc-gen-swift)
# Set PROTOC_GEN_SWIFT to the plugin if it is not at that path.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
plugin=${PROTOC_GEN_SWIFT:-/tmp/swift-protobuf/.build/release/protoc-gen-swift}
out="$root/Sources/SpyglassOutput/Generated"
mkdir -p "$out"
protoc \
  --plugin=protoc-gen-swift="$plugin" \
  --swift_opt=Visibility=Internal \
  --swift_opt=FileNaming=DropPath \
  --swift_out="$out" \
  -I "$here" \
  "$here/profile.proto"
# Keep swift-format away from generated code (protoc-gen-swift 1.39 already writes the banner).
if ! grep -q '^// swift-format-ignore-file' "$out/profile.pb.swift"; then
  tmp="$out/profile.pb.swift.tmp"
  { echo "// swift-format-ignore-file"; cat "$out/profile.pb.swift"; } > "$tmp"
  mv "$tmp" "$out/profile.pb.swift"
fi
echo "wrote $out/profile.pb.swift"
