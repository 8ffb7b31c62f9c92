#!/usr/bin/env bash
# A throwaway virtual environment with Hugging Face transformers on PyTorch (CPU use), PEFT and gguf, the peer of
# `studentsim bench qwen` and of runtimes/check-transformers.py. Not part of the set-up or the tests: it is about 7 GB (PyPI's torch wheel pulls the
# CUDA libraries). Prints the environment's python on stdout.
#
# usage: runtimes/bench-transformers.sh [DIR]   (default runtimes/.cache/bench-transformers)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/.cache/bench-transformers}"
pins="torch==2.9.1 transformers==4.57.3 safetensors==0.8.0 peft==0.18.0 gguf==0.17.1"
if [[ ! -x "$venv/bin/python" ]] || [[ "$(cat "$venv/pins" 2>/dev/null)" != "$pins" ]]; then
    echo "studentsim: installing $pins into $venv (a few GB, once)" >&2
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    # shellcheck disable=SC2086
    "$venv/bin/pip" install --quiet --disable-pip-version-check $pins >&2
    echo "$pins" > "$venv/pins"
fi
echo "$venv/bin/python"
