#!/usr/bin/env bash
# A throwaway virtual environment with llama-cpp-python (llama.cpp built from its PyPI sdist for this CPU, with
# the OpenAI-compatible server), the peer of `studentsim-dev bench qwen --gguf` and of the served-model rollouts
# (runtimes/serve-rollouts.sh). Not part of the set-up or the tests: building llama.cpp takes about 15 minutes
# on 2 cores. Prints the environment's python on stdout.
#
# llama.cpp built for the native CPU crashes in its AMX kernels on these machines (SIGSEGV in
# ggml_backend_amx_mul_mat), so it is built for AVX2 / AVX-512 without AMX.
#
# usage: runtimes/bench-llama-cpp.sh [DIR]   (default runtimes/.cache/bench-llama-cpp)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${1:-$here/.cache/bench-llama-cpp}"
pins="llama-cpp-python[server]==0.3.36"
cmake_args="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_OPENMP=ON"
CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" exec "$here/peer-venv.sh" "$venv" "$pins $cmake_args" \
    "$pins (llama.cpp from source, about 15 minutes)" --no-binary llama-cpp-python "$pins"
