#!/usr/bin/env bash
# Build studentsim with `--features cuda` on a machine without a GPU, with NVIDIA's CUDA 13 compiler and headers
# from PyPI (nvidia-cuda-nvcc ships nvcc; cicc and libdevice come in nvidia-nvvm, the runtime headers in
# nvidia-cuda-runtime and nvidia-cuda-crt, libcu++ in nvidia-cuda-cccl). The wheels are unpacked into one CUDA root
# under runtimes/.cache/cuda-13 and the build goes to target/cuda. The compute capability is set explicitly
# (CUDA_COMPUTE_CAP, default 90) because there is no GPU to ask. Not part of the set-up or CI.
#
# Where it stops (2026-12-01): every crate compiles, candle's 11 CUDA kernels included (PTX for sm_90 by nvcc
# 13.5), and so does the studentsim library; linking the binary fails for -lcuda -lnvrtc -lcurand -lcublas
# -lcublasLt -lcudart. The runtime wheel ships only libcudart.so.13 (no unversioned link name); cuBLAS, cuRAND and
# NVRTC are further wheels (nvidia-cublas, nvidia-curand, nvidia-cuda-nvrtc); libcuda.so is the driver, which no
# wheel ships: a GPU-less build links against the toolkit's lib/stubs/libcuda.so. `--lib` builds today.
#
# usage: runtimes/build-cuda.sh [extra cargo args]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cuda="$here/.cache/cuda-13"
# CCCL (libcu++, whose <nv/target> cuda_fp16.h includes) has no 13.5 wheel; 13.2.86 is the newest 13.x one.
packages="nvidia-cuda-nvcc==13.5.37 nvidia-nvvm==13.5.37 nvidia-cuda-runtime==13.5.37 nvidia-cuda-crt==13.5.37 nvidia-cuda-cccl==13.2.86"
if [[ "$(cat "$cuda/versions" 2>/dev/null)" != "$packages" ]]; then
    echo "studentsim: fetching the CUDA 13.5 compiler and headers from PyPI ($packages)" >&2
    rm -rf "$cuda"
    work="$(mktemp -d "$here/.cache/cuda.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    for p in $packages; do
        "${PYTHON:-python3}" -m pip download --quiet --disable-pip-version-check --no-deps "$p" -d "$work/wheels"
    done
    for w in "$work"/wheels/*.whl; do
        "${PYTHON:-python3}" -m zipfile -e "$w" "$work/unpacked"
    done
    mv "$work/unpacked/nvidia/cu13" "$cuda"
    chmod +x "$cuda"/bin/* "$cuda"/nvvm/bin/* 2>/dev/null || true
    # candle's build looks for libcudart under lib64 as well as lib.
    [[ -d "$cuda/lib" && ! -e "$cuda/lib64" ]] && ln -s lib "$cuda/lib64"
    echo "$packages" > "$cuda/versions"
fi
export PATH="$cuda/bin:$PATH" CUDA_ROOT="$cuda" CUDA_PATH="$cuda" CUDA_TOOLKIT_ROOT_DIR="$cuda"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}" LD_LIBRARY_PATH="$cuda/lib:${LD_LIBRARY_PATH:-}"
# cudarc 0.19.10 knows CUDA up to 13.4 and refuses the 13.5 toolkit it finds ("Unsupported cuda toolkit version:
# `13.5`"); its 13.4 bindings load the same libraries at run time.
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13040}"
nvcc --version | tail -2 >&2
cd "$root" && cargo build --release --features cuda --target-dir target/cuda "$@"
