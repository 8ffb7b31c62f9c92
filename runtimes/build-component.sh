#!/usr/bin/env bash
# Build the grader component into OUT (a .wasm path) with the tools runtimes/setup.sh installed: componentize-py
# pre-initializes CPython 3.14 with the harness (runtimes/harness/) and pycodestyle (runtimes/.cache/pylib/).
# The build runs with a fixed random source (fixed-random.c, through LD_PRELOAD), so CPython's string-hash
# secret, drawn during that pre-initialization, is the same in every build: sets of strings iterate in the
# same order whoever built the component. The bytes still differ from build to build (the snapshot keeps the
# modification times of the build's temporary folders, which componentize-py reads through raw system calls),
# so grader.json records the sha256 of each build rather than one pinned in the repository.
# Usage: runtimes/build-component.sh OUT.wasm
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${STUDENTSIM_SETUP_DIR:-$here/.cache}"
out="${1:?usage: runtimes/build-component.sh OUT.wasm}"
[[ -x "$cache/venv/bin/componentize-py" && -d "$cache/pylib" ]] || {
    echo "build-component: componentize-py or pylib missing: run runtimes/setup.sh" >&2
    exit 2
}

shim="$cache/fixed-random.so"
if [[ ! -f "$shim" || "$here/fixed-random.c" -nt "$shim" ]]; then
    command -v cc >/dev/null || { echo "build-component: a C compiler (cc) is needed for fixed-random.c" >&2; exit 2; }
    cc -O2 -shared -fPIC -o "$shim.tmp" "$here/fixed-random.c" -ldl
    mv "$shim.tmp" "$shim"
fi

cd "$here"
LD_PRELOAD="$shim" "$cache/venv/bin/componentize-py" --quiet -d wit -w grader componentize \
    -p harness -p "$cache/pylib" harness -o "$out"
