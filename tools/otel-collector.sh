#!/usr/bin/env bash
# Builds (or reuses) a real OpenTelemetry Collector for the upload tests: OTLP receiver, debug and
# OTLP/HTTP exporters, profiles support (tools/otel-collector/main.go; how to run it:
# tools/otel-collector/README.md).
#
# No collector binary is packaged anywhere we can reach, but Debian sid ships the collector's Go
# sources (golang-opentelemetry-collector-dev) and a Go toolchain: the script debootstraps a minimal
# sid root, installs both there, and builds main.go in GOPATH mode over Debian's sources (no module
# proxy, no network for Go). The result is one static binary that runs on the host.
#
# Only the binary is kept, in a cache folder, $SPYGLASS_OTELCOL_CACHE (default
# /var/cache/spyglass/otel-collector), so later runs on the same machine reuse it; a binary older
# than a week, or built from another main.go, is made anew (written beside the old one and swapped
# in when complete). The build root (about 3 GB: the Go sources, the toolchain and the build cache)
# is deleted once the binary is out: a rebuild from nothing takes about 4 minutes once a week,
# while the root would hold 3 GB of disk all the time. SPYGLASS_OTELCOL_KEEP_ROOT=1 keeps it (in
# the cache, as build-root/) and reuses it, for iterating on main.go. Needs root and Debian's archive.
#
# Usage: tools/otel-collector.sh [--print]   (--print: only print the binary's path, build nothing)
# Prints the binary's path as its last line.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
CACHE=${SPYGLASS_OTELCOL_CACHE:-/var/cache/spyglass/otel-collector}
MIRROR=${SPYGLASS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
KEEP_ROOT=${SPYGLASS_OTELCOL_KEEP_ROOT:-0}
MAX_AGE_DAYS=7
SUITE=sid
PACKAGES="golang-go golang-opentelemetry-collector-dev"
BIN="$CACHE/otelcol-spyglass"
MAIN="$here/otel-collector/main.go"

if [ "${1:-}" = "--print" ]; then
  echo "$BIN"
  exit 0
fi

log() { printf '== [%4ds] %s\n' "$SECONDS" "$*" >&2; }

# The stamp names what the binary was built from: the packages and main.go's hash.
want="$SUITE $PACKAGES $(sha256sum "$MAIN" | cut -d' ' -f1)"
stamp="$BIN.stamp"
if [ -x "$BIN" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
  && [ -n "$(find "$stamp" -mtime -"$MAX_AGE_DAYS" -print)" ]; then
  echo "$BIN"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  log "installing debootstrap"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

mkdir -p "$CACHE"
buildlog="$CACHE/build.log"
: >"$buildlog"
fail() {
  echo "building the collector failed ($1); its log: $buildlog" >&2
  tail -n 30 "$buildlog" >&2
  exit 1
}

# tools/in-root.sh runs a command chrooted in a private mount namespace with /proc mounted (the go
# command needs /proc); the mount vanishes with the namespace, even if the build is interrupted.
in_root() { "$here/in-root.sh" "$root" "$@"; }

if [ "$KEEP_ROOT" = 1 ]; then
  root="$CACHE/build-root"
else
  root="$CACHE/.build-root.$$"
  trap 'rm -rf "$root"' EXIT
fi
root_stamp="$root/.spyglass-otelcol-root"
if [ ! -f "$root_stamp" ] || [ "$(cat "$root_stamp")" != "$SUITE $PACKAGES" ]; then
  rm -rf "$root"
  log "debootstrapping Debian $SUITE into $root (about half a minute)"
  debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >>"$buildlog" 2>&1 || fail "debootstrap"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # sid's Release file can be past its Valid-Until on the archive this machine reaches.
  echo 'Acquire::Check-Valid-Until "false";' >"$root/etc/apt/apt.conf.d/99spyglass-valid-until"
  log "installing $PACKAGES in the root (about a minute and a half)"
  in_root apt-get update >>"$buildlog" 2>&1 || fail "apt-get update"
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $PACKAGES \
    >>"$buildlog" 2>&1 || fail "apt-get install"
  in_root apt-get clean >>"$buildlog" 2>&1
  echo "$SUITE $PACKAGES" >"$root_stamp"
fi
in_root dpkg-query -W golang-go golang-opentelemetry-collector-dev >>"$buildlog" 2>&1 || true

log "building the collector from tools/otel-collector/main.go (about a minute and a half)"
rm -rf "$root/build"
mkdir -p "$root/build/otelcol-spyglass"
cp "$MAIN" "$root/build/otelcol-spyglass/main.go"
# GOPATH mode over Debian's sources: no go.mod, no module proxy, the Debian toolchain only.
in_root /bin/sh -c 'cd /build/otelcol-spyglass && env HOME=/root GOCACHE=/root/.cache/go-build \
  GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOTOOLCHAIN=local GOFLAGS= CGO_ENABLED=0 \
  go build -trimpath -ldflags="-s -w" -o /build/otelcol-spyglass.bin .' >>"$buildlog" 2>&1 || fail "go build"

cp "$root/build/otelcol-spyglass.bin" "$BIN.new.$$"
"$BIN.new.$$" --version >>"$buildlog" 2>&1 || { rm -f "$BIN.new.$$"; fail "the built binary does not run on this host"; }
mv "$BIN.new.$$" "$BIN"
echo "$want" >"$stamp"
if [ "$KEEP_ROOT" != 1 ]; then
  log "deleting the build root (about 3 GB)"
  rm -rf "$root"
  trap - EXIT
fi
log "collector: $BIN ($(du -h "$BIN" | cut -f1))"
echo "$BIN"
