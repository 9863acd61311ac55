#!/usr/bin/env bash
# Runs Spyglass's whole test suite on a fresh machine of this kind: installs what the tests need
# (py-spy 0.4.3 as the differential oracle, pystack for the --native tests, Python's protobuf and jsonschema packages to check pprof
# and speedscope files, numpy in pyenv's 3.9+ for the locals tests, Debian's chromium to render flame
# graphs, PyPI's opentelemetry-proto and a real OpenTelemetry Collector for the upload tests), makes the Debian roots the containerised interpreters run in, checks formatting, then
# runs `swift test`. The CPython
# interpreters under test are pyenv's 2.7 and 3.6–3.13, Debian's /usr/bin/python3.11, and Debian
# trixie's python3.13 and sid's python3.14 and python3.15 chrooted in their roots
# (tools/debian-roots.sh, tools/in-root.sh); a missing one fails the run. The Python package's own
# unit tests (python/tests) run on /usr/bin/python3.11 and pyenv's 3.6 and 3.13.
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '== %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

PYSPY_VERSION=0.4.3
PY=python3
# The py-spy the tests will find (PYSPY_BIN, else the one on PATH) must be the pinned version: the
# tests write down where 0.4.3 and Spyglass are known to differ.
pyspy_version() { "${PYSPY_BIN:-py-spy}" --version 2>/dev/null || true; }
# The upload tests' receivers (Tests/SpyglassTests/Fixtures/otlp_sink.py) decode OTLP profiles with
# PyPI's opentelemetry-proto 1.45, generated from opentelemetry-proto 1.10.0, the protocol version
# Spyglass sends; they run on this same python3 (the first on PATH).
OTEL_PROTO='opentelemetry-proto>=1.45,<1.46'
otel_proto_ok() {
  $PY -c 'import importlib.metadata as m, sys
from opentelemetry.proto.collector.profiles.v1development import profiles_service_pb2
sys.exit(not m.version("opentelemetry-proto").startswith("1.45."))' 2>/dev/null
}
if ! $PY -c 'import jsonschema, google.protobuf' 2>/dev/null || [ "$(pyspy_version)" != "py-spy $PYSPY_VERSION" ] \
  || ! command -v pystack >/dev/null 2>&1 || ! otel_proto_ok; then
  log "installing Python test helpers (py-spy==$PYSPY_VERSION, protobuf, jsonschema, pystack for the --native tests, $OTEL_PROTO for the upload tests)"
  $PY -m pip install --quiet --disable-pip-version-check "py-spy==$PYSPY_VERSION" protobuf jsonschema pystack "$OTEL_PROTO"
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  if [ "$(pyspy_version)" != "py-spy $PYSPY_VERSION" ]; then
    echo "py-spy $PYSPY_VERSION is needed; ${PYSPY_BIN:-py-spy} --version says: '$(pyspy_version)'" >&2
    exit 1
  fi
  if ! otel_proto_ok; then
    echo "$OTEL_PROTO is needed in $(command -v $PY) (the upload tests' OTLP receiver) and could not be installed" >&2
    exit 1
  fi
fi
if ! command -v chromium >/dev/null 2>&1 || ! command -v tmux >/dev/null 2>&1 || ! command -v protoc >/dev/null 2>&1 \
  || ! command -v strace >/dev/null 2>&1 || ! command -v nsenter >/dev/null 2>&1 || ! command -v unshare >/dev/null 2>&1 \
  || ! command -v go >/dev/null 2>&1 || ! command -v callgrind_annotate >/dev/null 2>&1 \
  || ! /usr/bin/python3.11 -c 'import ensurepip' >/dev/null 2>&1; then
  log "installing Debian packages (chromium, tmux, protobuf-compiler, strace, util-linux, golang-go for go tool pprof, valgrind for callgrind_annotate, python3.11-venv)"
  as_root apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium tmux protobuf-compiler strace util-linux \
    golang-go valgrind python3.11-venv >/dev/null
fi
# The wheel tests (WheelTests): hatchling builds the wheel and the sdist (pip fetches its own for an
# isolated build too), auditwheel audits it, and 2.7's pip must be 20.3 or later to know the
# manylinux_2_17 tag its `pip install --user` is tested with.
if ! $PY -c 'import hatchling, auditwheel' 2>/dev/null; then
  log "installing hatchling and auditwheel (the wheel tests)"
  $PY -m pip install --quiet --disable-pip-version-check "hatchling>=1.24.2" auditwheel
fi
# numpy (2.x wheels from PyPI) in pyenv's 3.9 and later: the locals tests check numpy scalars there,
# as py-spy's own local_vars test does (PythonInterpreter.hasNumpyFromTestScript).
PYENV_VERSIONS="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-/root/.pyenv}")/versions"
for interpreter in "$PYENV_VERSIONS"/3.9*/bin/python3 "$PYENV_VERSIONS"/3.1[0-9]*/bin/python3; do
  [ -x "$interpreter" ] || continue
  if ! "$interpreter" -c 'import numpy' 2>/dev/null; then
    log "installing numpy into $interpreter (the locals tests read numpy scalars)"
    "$interpreter" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore numpy 2>/dev/null \
      || "$interpreter" -m pip install --quiet --disable-pip-version-check numpy
  fi
done
# Apache with Debian's mod_wsgi (the binary and module only: no service is installed or started).
if [ ! -x /usr/sbin/apache2 ] || [ ! -e /usr/lib/apache2/modules/mod_wsgi.so ] || ! command -v curl >/dev/null 2>&1; then
  log "installing apache2-bin and libapache2-mod-wsgi-py3 (the deployment tests)"
  as_root apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends apache2-bin \
    libapache2-mod-wsgi-py3 curl >/dev/null
fi
# Debian's debug interpreter, gevent and PyInstaller (PyPI, into pyenv's 3.12): deployments the tests
# keep working.
if [ ! -x /usr/bin/python3.11-dbg ]; then
  log "installing python3.11-dbg (the deployment tests)"
  as_root apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11-dbg >/dev/null
fi
for interpreter in "$PYENV_VERSIONS"/3.12.*/bin/python3; do
  [ -x "$interpreter" ] || continue
  if ! "$interpreter" -c 'import gevent, PyInstaller' 2>/dev/null; then
    log "installing gevent and PyInstaller into $interpreter (the deployment tests)"
    "$interpreter" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore gevent pyinstaller \
      2>/dev/null || "$interpreter" -m pip install --quiet --disable-pip-version-check gevent pyinstaller
  fi
done
# uv (PyPI): the deployment tests follow `record -- uv run …` to the Python it starts.
if ! command -v uv >/dev/null 2>&1; then
  log "installing uv (the launcher tests)"
  $PY -m pip install --quiet --disable-pip-version-check uv
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  command -v uv >/dev/null 2>&1 || { echo "uv could not be installed (the launcher tests need it)" >&2; exit 1; }
fi
# Cython (and setuptools, to build with) in pyenv's 3.11: the deployment tests build a Cython
# module and check its --native frames' .pyx lines (DeploymentTests.cythonFramesShowPyxLines).
for interpreter in "$PYENV_VERSIONS"/3.11.*/bin/python3; do
  [ -x "$interpreter" ] || continue
  if ! "$interpreter" -c 'import Cython, setuptools' 2>/dev/null; then
    log "installing Cython into $interpreter (the Cython --native test)"
    "$interpreter" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "cython>=3" setuptools 2>/dev/null \
      || "$interpreter" -m pip install --quiet --disable-pip-version-check "cython>=3" setuptools
  fi
done
PY27="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-/root/.pyenv}")/versions/2.7.18/bin/python2.7"
if [ -x "$PY27" ] && ! "$PY27" -c 'import pip, sys; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (20, 3))' 2>/dev/null; then
  log "upgrading 2.7's pip to 20.3.4 (it knows manylinux_2_17 wheels; the wheel tests install one with it)"
  "$PY27" -m pip install --quiet --disable-pip-version-check "pip==20.3.4"
fi

# The C libraries Spyglass links (elfutils for --native); gdb's gcore for the core-file tests.
tools/build-deps.sh
if ! command -v gcore >/dev/null 2>&1; then
  log "installing gdb (gcore makes the core files dump --core is tested on)"
  as_root apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gdb >/dev/null
fi
# Debian's uWSGI with its Python 3 plugin: the deployment tests dump a master and the workers it
# forks from C (DeploymentTests.uwsgiMasterAndWorkers).
if ! command -v uwsgi >/dev/null 2>&1 || [ ! -e /usr/lib/uwsgi/plugins/python3_plugin.so ]; then
  log "installing uWSGI and its Python 3 plugin (the deployment tests)"
  as_root apt-get update -qq >/dev/null
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq uwsgi-core uwsgi-plugin-python3 >/dev/null
fi

# The Debian roots (made once, reused, made anew when a week old). The tests ask the same script
# where they are; exporting the folder keeps a `sudo`ed run and the tests on the same one.
export SPYGLASS_ROOTS
SPYGLASS_ROOTS=$(tools/debian-roots.sh --print)
log "Debian roots for python3.13 (trixie), 3.14 and 3.15 (sid) in $SPYGLASS_ROOTS"
as_root env SPYGLASS_ROOTS="$SPYGLASS_ROOTS" tools/debian-roots.sh

# A real OpenTelemetry Collector (0.152, profiles support) for the upload tests: built once from
# Debian's packaged Go sources (about 7 minutes) and cached; the tests find it through
# SPYGLASS_OTELCOL and fail, saying so, without it.
log "OpenTelemetry Collector for the upload tests (tools/otel-collector.sh; cached once built)"
export SPYGLASS_OTELCOL
SPYGLASS_OTELCOL=$(as_root tools/otel-collector.sh | tail -n 1)
if [ ! -x "$SPYGLASS_OTELCOL" ]; then
  echo "tools/otel-collector.sh did not leave a collector binary (it printed '$SPYGLASS_OTELCOL')" >&2
  exit 1
fi

log "checking formatting (swift format lint --strict)"
swift format lint --strict --recursive Sources Tests Package.swift Examples

# The release configuration has build settings of its own (static executable, lld with a code
# order, function sections, no exclusivity checks on the sampling path): it must build too.
log "building the release executable"
swift build -c release --product spyglass

log "building the tests"
swift build --build-tests

# The Python package's own unit tests (python/tests, unittest, no third-party packages), on the oldest
# Python its API supports, Debian's and the newest pyenv one, against the release executable just
# built (SPYGLASS_BINARY: every save type is rendered by it). A missing interpreter fails the run.
python_interpreters=(/usr/bin/python3.11 "$(ls -d "$PYENV_VERSIONS"/3.6.*/bin/python3 2>/dev/null | head -1 || true)"
  "$(ls -d "$PYENV_VERSIONS"/3.13.*/bin/python3 2>/dev/null | head -1 || true)")
python_status=0
for interpreter in "${python_interpreters[@]}"; do
  if [ -z "$interpreter" ] || [ ! -x "$interpreter" ]; then
    echo "== a Python the package's tests need is missing (expected /usr/bin/python3.11, pyenv's 3.6 and 3.13)" >&2
    python_status=1
    continue
  fi
  log "Python package tests with $interpreter"
  (cd python && SPYGLASS_BINARY="$(cd .. && swift build -c release --show-bin-path)/spyglass" \
    "$interpreter" -m unittest discover -s tests -t .) || python_status=1
done

# Two phases. Suites whose checks depend on the target getting the CPU when it wants it (shares
# measured by sampling, idle threads staying idle, a live terminal view, thread churn) run one
# test at a time in phase 2, on a machine left to them; everything else runs in parallel first.
# On 2 cores, running them beside the parallel suites made them fail now and then for reasons
# that had nothing to do with Spyglass.
timing_sensitive='SpyglassTests\.(RecordTests|ContinuousProfilingTests|UploaderTests|AsyncRecordTests|TopTests|TargetSafetyTests|PySpyCompatibilityTests|WheelTests)'
log "phase 1: tests in parallel"
set +e
swift test --skip-build --skip "$timing_sensitive" 2>&1 | tee .build/test-output.txt
status1=${PIPESTATUS[0]}
log "phase 2: timing-sensitive suites, one test at a time"
swift test --skip-build --no-parallel --filter "$timing_sensitive" 2>&1 | tee -a .build/test-output.txt
status2=${PIPESTATUS[0]}
set -e
log "interpreters covered"
grep -E "Interpreters covered|covered" .build/test-output.txt | sort -u | head -20 || true
log "Python package tests exit status $python_status, phase 1 exit status $status1, phase 2 exit status $status2"
[ "$python_status" = 0 ] && [ "$status1" = 0 ] && [ "$status2" = 0 ]
