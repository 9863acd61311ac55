#!/bin/sh
# Runs a command inside a Debian root the way a container runs it: in a mount namespace of its own,
# chrooted, with /proc mounted. The host folders named with --bind (each at the same path inside)
# are visible to it, so a test can hand it scripts and temporary files by their host paths. The
# process keeps its pid (every step execs), and Spyglass, py-spy and the tests see it from the host
# through /proc/PID/root exactly as they would see a container's process. The mounts vanish with
# the namespace when the process ends; nothing is mounted on the host.
#
# Usage: tools/in-root.sh [--bind DIR]... ROOT COMMAND [ARGS...]
set -eu
binds=""
while [ "$#" -gt 0 ] && [ "$1" = "--bind" ]; do
  binds="$binds
$2"
  shift 2
done
[ "$#" -ge 2 ] || { echo "usage: in-root.sh [--bind DIR]... ROOT COMMAND [ARGS...]" >&2; exit 2; }
root=$1
shift
export SPYGLASS_IN_ROOT_BINDS="$binds" SPYGLASS_IN_ROOT="$root"
exec unshare --mount --propagation private /bin/sh -c '
  set -eu
  root=$SPYGLASS_IN_ROOT
  mount -t proc proc "$root/proc"
  printf "%s\n" "$SPYGLASS_IN_ROOT_BINDS" | while IFS= read -r dir; do
    [ -n "$dir" ] || continue
    mkdir -p "$root$dir"
    mount --bind "$dir" "$root$dir"
  done
  unset SPYGLASS_IN_ROOT SPYGLASS_IN_ROOT_BINDS
  exec chroot "$root" "$@"
' in-root "$@"
