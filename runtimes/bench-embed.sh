#!/usr/bin/env bash
# The peer of `studentsim-dev bench embed`: sentence-transformers on PyTorch, in the environment bench-transformers.sh
# makes (one environment for every PyTorch peer: it is about 7 GB). Prints the environment's python on stdout.
#
# usage: runtimes/bench-embed.sh [DIR]   (default runtimes/.cache/bench-transformers)
set -euo pipefail
exec "$(cd "$(dirname "$0")" && pwd)/bench-transformers.sh" "$@"
