#!/usr/bin/env bash
# Runs Spyglass's whole test suite on a fresh machine of this kind: installs what the tests need
# (py-spy as the differential oracle, Python's protobuf and jsonschema packages to check pprof and
# speedscope files, Debian's chromium to render flame graphs), checks formatting, then runs
# `swift test`. The CPython interpreters under test are the ones installed on the machine (pyenv's
# 2.7 and 3.6–3.13 plus Debian's /usr/bin/python3.11); a missing one fails the run.
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '== %s\n' "$*"; }

PY=python3
if ! $PY -c 'import jsonschema, google.protobuf' 2>/dev/null || ! command -v py-spy >/dev/null 2>&1; then
  log "installing Python test helpers (py-spy, protobuf, jsonschema)"
  $PY -m pip install --quiet --disable-pip-version-check py-spy protobuf jsonschema
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi
if ! command -v chromium >/dev/null 2>&1 || ! command -v tmux >/dev/null 2>&1 || ! command -v protoc >/dev/null 2>&1 \
  || ! command -v strace >/dev/null 2>&1; then
  log "installing Debian packages (chromium, tmux, protobuf-compiler, strace)"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium tmux protobuf-compiler strace >/dev/null
  else
    sudo apt-get update -qq >/dev/null
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium tmux protobuf-compiler strace >/dev/null
  fi
fi

log "checking formatting (swift format lint --strict)"
swift format lint --strict --recursive Sources Tests Package.swift

log "building and running the tests"
swift build --build-tests
swift test --skip-build --parallel 2>&1 | tee .build/test-output.txt
status=${PIPESTATUS[0]}
grep -E "Interpreters covered|interpreter" .build/test-output.txt | sort -u | head -20 || true
exit "$status"
