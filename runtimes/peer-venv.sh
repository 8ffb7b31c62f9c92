#!/usr/bin/env bash
# A throwaway virtual environment for a benchmark peer, made once: (re)created when STAMP differs from the one
# it was made with, then `pip install PIP_ARGS...` (the caller's environment passes through, e.g. CMAKE_ARGS).
# Prints the environment's python on stdout. Used by bench-transformers.sh and bench-llama-cpp.sh.
#
# usage: runtimes/peer-venv.sh VENV STAMP WHAT PIP_ARGS...   (WHAT: a few words for the progress line)
set -euo pipefail
venv="$1" stamp="$2" what="$3"
shift 3
if [[ ! -x "$venv/bin/python" ]] || [[ "$(cat "$venv/pins" 2>/dev/null)" != "$stamp" ]]; then
    echo "studentsim: installing $what into $venv (once)" >&2
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
    echo "$stamp" > "$venv/pins"
fi
echo "$venv/bin/python"
