#!/usr/bin/env bash
# Build studentsim with `--features cuda` on a machine without a GPU, with NVIDIA's CUDA 13 compiler and headers
# from PyPI (nvidia-cuda-nvcc ships nvcc; cicc and libdevice come in nvidia-nvvm, the runtime headers in
# nvidia-cuda-runtime and nvidia-cuda-crt). The wheels are unpacked into one CUDA root
# under runtimes/.cache/cuda-13 and the build goes to target/cuda. The compute capability is set explicitly
# (CUDA_COMPUTE_CAP, default 90) because there is no GPU to ask. Not part of the set-up or CI.
#
# usage: runtimes/build-cuda.sh [extra cargo args]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cuda="$here/.cache/cuda-13"
version=13.5.37
packages="nvidia-cuda-nvcc nvidia-nvvm nvidia-cuda-runtime nvidia-cuda-crt"
if [[ "$(cat "$cuda/versions" 2>/dev/null)" != "$packages $version" ]]; then
    echo "studentsim: fetching CUDA $version compiler and headers from PyPI ($packages)" >&2
    rm -rf "$cuda"
    work="$(mktemp -d "$here/.cache/cuda.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    for p in $packages; do
        "${PYTHON:-python3}" -m pip download --quiet --disable-pip-version-check --no-deps "$p==$version" -d "$work/wheels"
    done
    for w in "$work"/wheels/*.whl; do
        "${PYTHON:-python3}" -m zipfile -e "$w" "$work/unpacked"
    done
    mv "$work/unpacked/nvidia/cu13" "$cuda"
    chmod +x "$cuda"/bin/* "$cuda"/nvvm/bin/* 2>/dev/null || true
    # candle's build looks for libcudart under lib64 as well as lib.
    [[ -d "$cuda/lib" && ! -e "$cuda/lib64" ]] && ln -s lib "$cuda/lib64"
    echo "$packages $version" > "$cuda/versions"
fi
export PATH="$cuda/bin:$PATH" CUDA_ROOT="$cuda" CUDA_PATH="$cuda" CUDA_TOOLKIT_ROOT_DIR="$cuda"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}" LD_LIBRARY_PATH="$cuda/lib:${LD_LIBRARY_PATH:-}"
nvcc --version | tail -2 >&2
cd "$root" && cargo build --release --features cuda --target-dir target/cuda "$@"
