#!/bin/bash
# Makes bench/link-order/order.txt and hot.ld anew (see README.md): builds the release binary with
# a link map, runs it under valgrind's callgrind through typical uses, orders what ran, then runs
# the relinked binary natively to place what only a native run uses (glibc's IFUNC choices for
# this CPU, the vDSO set-up), until a native run finds nothing more. Ends with a release build
# linked in the new order. Needs valgrind, objcopy, readelf, perf (optional: without it only the
# IFUNC choices are taken from a native run) and CPython (pyenv's versions, or the interpreters in
# $LINK_ORDER_PYTHONS). Usage: bench/link-order/generate.sh [work directory]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$(mktemp -d /tmp/spyglass-link-order.XXXXXX)}
mkdir -p "$work"
rm -f "$work"/*.callgrind "$work/native.txt" "$work/ordered.txt"
cd "$root"
bin=$(swift build -c release --show-bin-path)/spyglass
# The link reads order.txt and hot.ld, but SwiftPM does not know it: remove the binary to relink.
# lld's map names C++ symbols demangled unless told not to; the ordering file needs them mangled.
link_with_map() {
  rm -f "$bin"
  swift build -c release -Xlinker -Map="$1" -Xlinker --no-demangle 2>&1 | grep -v "statically linked\|mktemp" || true
  test -x "$bin"
}
link_with_map "$work/callgrind.map"
# valgrind 3.19 gives up on the toolchain's DWARF 5; the symbols are all it needs.
objcopy --strip-debug "$bin" "$work/spyglass-callgrind"
python3 "$here/generate.py" callgrind --work "$work" --spyglass "$work/spyglass-callgrind"
python3 "$here/generate.py" order --work "$work"
for pass in 1 2 3 4 5; do
  link_with_map "$work/native.map"
  python3 "$here/generate.py" native --work "$work" --spyglass "$bin" --map "$work/native.map" || break
  python3 "$here/generate.py" order --work "$work"
done
rm -f "$bin"
swift build -c release 2>&1 | grep -v "statically linked\|mktemp" || true
test -x "$bin"
echo "wrote $here/order.txt and $here/hot.ld; runs in $work"
