#!/usr/bin/env bash
# Installs the C libraries Spyglass links (elfutils' libdw and libelf for --native, with the
# compression libraries libelf reads sections with) when their headers or static archives are
# missing. Debian packages; run as root or with sudo. test.sh and spyglass.sh call it.
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
have() { [ -f /usr/include/elfutils/libdwfl.h ] && for a in dw elf z lzma bz2; do
  [ -f "/usr/lib/x86_64-linux-gnu/lib$a.a" ] || [ -f "/usr/lib/lib$a.a" ] || return 1; done; }
if ! have; then
  echo "== installing elfutils' libdw and libelf (Debian's libdw-dev, libelf-dev, zlib1g-dev, liblzma-dev, libbz2-dev)" >&2
  as_root apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libdw-dev libelf-dev zlib1g-dev liblzma-dev \
    libbz2-dev >/dev/null
fi
