#!/usr/bin/env bash
# Builds Spyglass (release) and runs it with the given arguments: the README's first command.
# Installs the C libraries it links first when they are missing (tools/build-deps.sh).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
"$here/tools/build-deps.sh"
exec swift run --package-path "$here" -c release spyglass "$@"
