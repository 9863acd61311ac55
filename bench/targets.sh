#!/bin/bash
# One binary's CPU per sample on each interpreter in turn: `record --nonblocking -r RATE -d 3`,
# 3 runs per target, on bench/harness/workloads/cpu_stack.py (one thread, 10-deep CPU-bound stack).
#   bench/targets.sh .build/release/spyglass
#   TARGETS="pyenv312 sid315" RATE=1000 bench/targets.sh BINARY
# Targets: pyenv312, pyenv313 (pyenv's builds on the host), trixie313, sid314, sid315 (Debian's, in
# the roots tools/debian-roots.sh makes, run with tools/in-root.sh). CPU is /usr/bin/time's user+sys.
# Each target is exec'd from a background subshell, so the pid recorded is the python's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1
roots=$("$here/../tools/debian-roots.sh" --print)
pyenv=$(pyenv root)/versions
script=/tmp/spyglass-targets-cpu_stack.py
cp "$here/harness/workloads/cpu_stack.py" "$script"
start() {
  case $1 in
    pyenv312) exec "$pyenv/3.12.1/bin/python3.12" "$script" --seconds 300 ;;
    pyenv313) exec "$pyenv/3.13.0/bin/python3.13" "$script" --seconds 300 ;;
    trixie313) exec "$here/../tools/in-root.sh" --bind /tmp "$roots/trixie" /usr/bin/python3.13 "$script" --seconds 300 ;;
    sid314) exec "$here/../tools/in-root.sh" --bind /tmp "$roots/sid" /usr/bin/python3.14 "$script" --seconds 300 ;;
    sid315) exec "$here/../tools/in-root.sh" --bind /tmp "$roots/sid" /usr/bin/python3.15 "$script" --seconds 300 ;;
    *) echo "unknown target $1" >&2; exit 2 ;;
  esac
}
for name in ${TARGETS:-pyenv312 pyenv313 trixie313 sid314 sid315}; do
  start "$name" >/dev/null 2>&1 &
  pid=$!
  sleep 1.5
  for round in 1 2 3; do
    times=$(/usr/bin/time -f "%U %S" "$bin" record --nonblocking -r "${RATE:-10000}" -d 3 -f raw \
      -o /tmp/spyglass-targets.txt --pid "$pid" 2>&1 | tail -1)
    n=$(awk '{s += $NF} END {print s}' /tmp/spyglass-targets.txt)
    echo "$name $(echo "$times" | awk -v n="$n" '{printf "%.1f µs/sample (user %.1f, sys %.1f; %d samples)", ($1 + $2) * 1e6 / n, $1 * 1e6 / n, $2 * 1e6 / n, n}')"
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
