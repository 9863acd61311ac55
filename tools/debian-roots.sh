#!/usr/bin/env bash
# Makes (or reuses) the Debian roots the tests run CPython 3.13 (trixie), 3.14 and 3.15 (sid) in.
#
# Each root is a `debootstrap --variant=minbase` of one Debian suite with that suite's Python
# packages and their -dev headers (the layout generator reads them). Roots live in a cache folder,
# $SPYGLASS_ROOTS (default /var/cache/spyglass/debian-roots), so later runs on the same machine reuse
# them; a root older than a week is made anew (into a new folder, swapped in when complete, so an
# interrupted run never leaves a half-made root in use). Needs root and Debian's archive.
#
# Usage: tools/debian-roots.sh [--print]   (--print: only print the folder, make nothing)
# Targets are started in a root with tools/in-root.sh.
set -euo pipefail

CACHE=${SPYGLASS_ROOTS:-/var/cache/spyglass/debian-roots}
MIRROR=${SPYGLASS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
MAX_AGE_DAYS=7

# suite:packages (the packages' interpreters are listed in Tests/TestSupport/PythonInterpreter.swift)
SUITES=(
  "trixie:python3.13,python3.13-dev"
  "sid:python3.14,python3.15,python3.14-dev,python3.15-dev"
)

if [ "${1:-}" = "--print" ]; then
  echo "$CACHE"
  exit 0
fi

log() { printf '== %s\n' "$*"; }

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

mkdir -p "$CACHE"
for entry in "${SUITES[@]}"; do
  suite=${entry%%:*}
  packages=${entry#*:}
  root="$CACHE/$suite"
  stamp="$root/.spyglass-root"
  # A complete root has the stamp, naming the packages it was made with, and is less than a week old.
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$packages" ] \
    && [ -n "$(find "$stamp" -mtime -"$MAX_AGE_DAYS" -print)" ]; then
    continue
  fi
  log "making the Debian $suite root ($packages) in $root (about a minute)"
  fresh="$CACHE/.$suite.new.$$"
  rm -rf "$fresh"
  if ! debootstrap --variant=minbase --include="$packages" "$suite" "$fresh" "$MIRROR" >"$CACHE/$suite.log" 2>&1; then
    echo "debootstrap of Debian $suite failed; its log: $CACHE/$suite.log" >&2
    tail -n 20 "$CACHE/$suite.log" >&2
    rm -rf "$fresh"
    exit 1
  fi
  echo "$packages" >"$fresh/.spyglass-root"
  old="$CACHE/.$suite.old.$$"
  [ -d "$root" ] && mv "$root" "$old"
  mv "$fresh" "$root"
  rm -rf "$old"
done
