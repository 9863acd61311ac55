#!/bin/sh
# Regenerates the Swift code of the protocol buffers Spyglass writes:
#   pprof   Protos/profile.proto -> Sources/SpyglassOutput/Generated/profile.pb.swift
#   export  Protos/otlp/*.proto (OTLP profiles, v1.10.0) and Protos/pyroscope/push.proto (Pyroscope's
#           Push API) -> Sources/SpyglassExport/Generated/{otlp,pyroscope}_*.pb.swift
# Usage: Protos/generate.sh [pprof|export|all]   (default: all)
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
what=${1:-all}

# Keep swift-format away from generated code (protoc-gen-swift 1.39 already writes the banner).
ignore_banner() {
  for file in "$@"; do
    if ! grep -q '^// swift-format-ignore-file' "$file"; then
      { echo "// swift-format-ignore-file"; cat "$file"; } >"$file.tmp"
      mv "$file.tmp" "$file"
    fi
    echo "wrote $file"
  done
}

case "$what" in
  pprof | export | all) ;;
  *)
    echo "usage: Protos/generate.sh [pprof|export|all]" >&2
    exit 2
    ;;
esac

if [ "$what" != export ]; then
  out="$root/Sources/SpyglassOutput/Generated"
  mkdir -p "$out"
  protoc \
    --plugin=protoc-gen-swift="$plugin" \
    --swift_opt=Visibility=Internal \
    --swift_opt=FileNaming=DropPath \
    --swift_out="$out" \
    -I "$here" \
    "$here/profile.proto"
  ignore_banner "$out/profile.pb.swift"
fi

if [ "$what" != pprof ]; then
  # One module (SpyglassExport) holds both protocols, its types prefixed by each file's
  # swift_prefix (OTLP..., Pyroscope...). The files are named after their folder
  # (otlp/profiles.proto -> otlp_profiles.pb.swift), and the import paths are relative to Protos/.
  out="$root/Sources/SpyglassExport/Generated"
  mkdir -p "$out"
  protoc \
    --plugin=protoc-gen-swift="$plugin" \
    --swift_opt=Visibility=Internal \
    --swift_opt=FileNaming=PathToUnderscores \
    --swift_out="$out" \
    -I "$here" \
    "$here/otlp/common.proto" "$here/otlp/resource.proto" "$here/otlp/profiles.proto" \
    "$here/otlp/profiles_service.proto" "$here/pyroscope/push.proto"
  ignore_banner "$out/otlp_common.pb.swift" "$out/otlp_resource.pb.swift" "$out/otlp_profiles.pb.swift" \
    "$out/otlp_profiles_service.pb.swift" "$out/pyroscope_push.pb.swift"
fi
