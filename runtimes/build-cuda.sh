#!/usr/bin/env bash
# Build studentsim with `--features cuda` on a machine without a GPU, with NVIDIA's CUDA 13 compiler and headers
# from PyPI (nvidia-cuda-nvcc ships nvcc; cicc and libdevice come in nvidia-nvvm, the runtime headers in
# nvidia-cuda-runtime and nvidia-cuda-crt, libcu++ in nvidia-cuda-cccl). The wheels are unpacked into one CUDA root
# under runtimes/.cache/cuda-13 and the build goes to target/cuda. The compute capability is set explicitly
# (CUDA_COMPUTE_CAP, default 90) because there is no GPU to ask. Not part of the set-up or CI.
#
# Linking needs the libraries candle's cudarc links against (`dynamic-linking`): cuBLAS, cuBLASLt, cuRAND and NVRTC
# come in three more wheels; libcuda.so is the driver, which no wheel ships, so the build links against a stub
# generated here from the driver functions cudarc declares (each returns CUDA_ERROR_UNKNOWN; its soname is
# libcuda.so.1 and its file libcuda.so, so on a GPU machine the binary loads the real driver). Unversioned link names are added.
#
# usage: runtimes/build-cuda.sh [extra cargo args]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cuda="$here/.cache/cuda-13"
# CCCL (libcu++, whose <nv/target> cuda_fp16.h includes) has no 13.5 wheel; 13.2.86 is the newest 13.x one.
# cuBLAS 13.5.1.27, cuRAND 10.4.5.25 and NVRTC 13.5.37 are only linked against here (their sonames: .so.13, .so.10).
packages="nvidia-cuda-nvcc==13.5.37 nvidia-nvvm==13.5.37 nvidia-cuda-runtime==13.5.37 nvidia-cuda-crt==13.5.37 nvidia-cuda-cccl==13.2.86 nvidia-cublas==13.5.1.27 nvidia-curand==10.4.5.25 nvidia-cuda-nvrtc==13.5.37"
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
    # The linker looks for libX.so; the wheels ship libX.so.N.
    for lib in "$cuda"/lib/lib*.so.*; do
        name="${lib%%.so.*}.so"
        [[ -e "$name" ]] || ln -s "$(basename "$lib")" "$name"
    done
    # The driver stub: every cu* function cudarc's driver bindings declare.
    sys="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.10/src/driver/sys/mod.rs | head -1)"
    grep -o 'fn cu[A-Za-z0-9_]*(' "$sys" | sort -u | sed 's/^fn \(.*\)($/int \1(void) { return 999; }/' > "$work/cuda-stub.c"
    # In lib/, where cudarc's build script looks; the loader asks for libcuda.so.1, which is not there.
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cuda/lib/libcuda.so" "$work/cuda-stub.c"
    echo "$packages" > "$cuda/versions"
fi
export PATH="$cuda/bin:$PATH" CUDA_ROOT="$cuda" CUDA_PATH="$cuda" CUDA_TOOLKIT_ROOT_DIR="$cuda"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}" LD_LIBRARY_PATH="$cuda/lib:${LD_LIBRARY_PATH:-}"
# cudarc 0.19.10 knows CUDA up to 13.4 and refuses the 13.5 toolkit it finds ("Unsupported cuda toolkit version:
# `13.5`"); its 13.4 bindings load the same libraries at run time.
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13040}"
nvcc --version | tail -2 >&2
cd "$root" && cargo build --release --features cuda --target-dir target/cuda "$@"
