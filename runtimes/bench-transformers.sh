#!/usr/bin/env bash
# A throwaway virtual environment with Hugging Face transformers on PyTorch (CPU use), PEFT, gguf and
# sentence-transformers, the peer of `studentsim-dev bench qwen` (random weights), of `bench qwen --gguf FILE --peer
# transformers` and of `bench embed` (through bench-embed.sh). Not part of the
# set-up or the tests: it is about 7 GB (PyPI's torch wheel pulls the CUDA libraries). Prints the environment's
# python on stdout.
#
# usage: runtimes/bench-transformers.sh [DIR]   (default runtimes/.cache/bench-transformers)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/.cache/bench-transformers}"
pins=(torch==2.9.1 transformers==4.57.3 safetensors==0.8.0 peft==0.18.0 gguf==0.17.1 sentence-transformers==5.1.2)
exec "$here/peer-venv.sh" "$venv" "${pins[*]}" "${pins[*]} (a few GB)" "${pins[@]}"
