#!/bin/bash
# A quick interleaved A/B of CPU per sample: `record [--nonblocking] -r RATE -d 3` by each binary
# given, 4 rounds, on one CPU-bound target (bench/harness/workloads/cpu_stack.py).
#   bench/ab.sh OLD_BINARY NEW_BINARY            # target: Debian sid's python3.15 in its root
#   PYTHON=/path/python3.12 bench/ab.sh A B      # target: a host interpreter
#   RATE=1000 bench/ab.sh A B
#   BLOCKING=1 bench/ab.sh A B                  # blocking mode (the default mode of record)
#   BLOCKING=1 RATE=1000 EXTRA=--native bench/ab.sh A B          # more record options
#   TARGET="async_tasks.py many 1000" EXTRA="--async-aware --async-mode all" RATE=1000 bench/ab.sh A B
#                                               # another fixture of Tests/SpyglassTests/Fixtures/scripts
# CPU is /usr/bin/time's user+sys (10 ms resolution: use runs of 0.5 s of CPU or more); samples are
# the raw file's stack counts, so with --async-aware a tick counts every task's stack.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${TARGET:-}" ]; then
  read -r script arguments <<<"$TARGET"
  cp "$here/../Tests/SpyglassTests/Fixtures/scripts/$script" /tmp/spyglass-ab-target.py
  target=(/tmp/spyglass-ab-target.py $arguments)
else
  cp "$here/harness/workloads/cpu_stack.py" /tmp/spyglass-ab-target.py
  target=(/tmp/spyglass-ab-target.py --seconds 300)
fi
if [ -n "${PYTHON:-}" ]; then
  "$PYTHON" "${target[@]}" >/dev/null 2>&1 &
else
  root=$("$here/../tools/debian-roots.sh" --print)/sid
  "$here/../tools/in-root.sh" --bind /tmp "$root" /usr/bin/python3.15 "${target[@]}" >/dev/null 2>&1 &
fi
pid=$!
mode=--nonblocking
[ -n "${BLOCKING:-}" ] && mode=""
trap 'kill $pid 2>/dev/null || true' EXIT
sleep 1
for round in 1 2 3 4; do
  for bin in "$@"; do
    times=$(/usr/bin/time -f "%U %S" "$bin" record $mode ${EXTRA:-} -r "${RATE:-10000}" -d 3 -f raw \
      -o /tmp/spyglass-ab.txt --pid "$pid" 2>&1 | tail -1)
    samples=$(awk '{s += $NF} END {print s}' /tmp/spyglass-ab.txt)
    echo "$bin $(echo "$times" | awk -v n="$samples" '{printf "%.1f µs/sample (%d samples; user %s s, sys %s s)", ($1 + $2) * 1e6 / n, n, $1, $2}')"
  done
done | sort
