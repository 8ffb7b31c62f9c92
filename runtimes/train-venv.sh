#!/usr/bin/env bash
# The training environment of `studentsim train`: a throwaway virtual environment with torch, transformers, PEFT,
# accelerate and gguf, every package pinned by version and sha256 (train-requirements.txt). Made once, remade when
# the requirements change. Not part of the set-up or the tests' needs: PyPI's torch brings NVIDIA's CUDA libraries
# (about 6 GB in all). Prints the environment's python on stdout.
#
# usage: runtimes/train-venv.sh [DIR]   (default runtimes/.cache/train-venv, or $STUDENTSIM_TRAIN_VENV)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-${STUDENTSIM_TRAIN_VENV:-$here/.cache/train-venv}}"
requirements="$here/train-requirements.txt"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$requirements" "$venv/requirements.txt"; then
    echo "studentsim: installing the training environment (torch, transformers, PEFT; about 6 GB) into $venv (once)" >&2
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    # --no-deps: the file lists the whole closure, so nothing unpinned can come in
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --require-hashes -r "$requirements" >&2
    cp "$requirements" "$venv/requirements.txt"
fi
echo "$venv/bin/python"
