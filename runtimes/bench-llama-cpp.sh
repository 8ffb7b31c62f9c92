#!/usr/bin/env bash
# A throwaway virtual environment with llama-cpp-python (llama.cpp built from its PyPI sdist, with the
# OpenAI-compatible server), the peer of `studentsim-dev bench qwen --gguf` and of the served-model rollouts
# (runtimes/serve-rollouts.sh). Not part of the set-up or the tests: building llama.cpp took 1 to 5 minutes on 2
# cores here (it used to take 15). Prints the environment's python on stdout; the environment's `isa` file names
# what it was built for.
#
# One build per instruction set, each in its own environment:
#   avx2    AVX2 + FMA + F16C, no AVX-512: runs on every x86-64 machine we use (AMD EPYC Zen 3 has no AVX-512)
#   avx512  the above plus AVX-512 (F, BW, VL, DQ), with VNNI, VBMI and BF16 where this CPU has them
# The default is the best this CPU runs; an instruction set the CPU lacks is refused (it would die of SIGILL).
# AMX stays off: llama.cpp's AMX kernels crash on these machines (SIGSEGV in ggml_backend_amx_mul_mat). The build
# bypasses pip's caches: pip's wheel cache ignores CMAKE_ARGS, so a cached AVX-512 wheel came back for an AVX2
# build and crashed.
#
# usage: runtimes/bench-llama-cpp.sh [--isa avx2|avx512] [DIR]   (default DIR: runtimes/.cache/bench-llama-cpp-ISA)
#   LLAMA_CPP_ISA=avx2|avx512 does what --isa does (how `bench qwen` pairs the peer with its own kernel).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
isa="${LLAMA_CPP_ISA:-}"
venv=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --isa) [[ $# -ge 2 ]] || { echo "bench-llama-cpp.sh: --isa needs avx2 or avx512" >&2; exit 2; }; isa="$2"; shift 2 ;;
        --isa=*) isa="${1#--isa=}"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        -*) echo "bench-llama-cpp.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) venv="$1"; shift ;;
    esac
done

flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
has() { [[ "$flags" == *" $1 "* ]]; }
cpu_avx512=false
if has avx512f && has avx512bw && has avx512vl && has avx512dq; then cpu_avx512=true; fi
if ! { has avx2 && has fma && has f16c; }; then
    echo "bench-llama-cpp.sh: this CPU has no AVX2 + FMA + F16C; llama.cpp's peer build needs them" >&2
    exit 2
fi
if [[ -z "$isa" ]]; then
    if $cpu_avx512; then isa=avx512; else isa=avx2; fi
fi
on_off() { if has "$1"; then echo ON; else echo OFF; fi; }
common="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX_VNNI=OFF"
common="$common -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_OPENMP=ON"
case "$isa" in
    avx2)
        cmake_args="$common -DGGML_AVX512=OFF -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF -DGGML_AVX512_BF16=OFF" ;;
    avx512)
        if ! $cpu_avx512; then
            echo "bench-llama-cpp.sh: --isa avx512 on a CPU without AVX-512 (F, BW, VL, DQ): it would die of SIGILL; use --isa avx2" >&2
            exit 2
        fi
        cmake_args="$common -DGGML_AVX512=ON -DGGML_AVX512_VBMI=$(on_off avx512vbmi)"
        cmake_args="$cmake_args -DGGML_AVX512_VNNI=$(on_off avx512_vnni) -DGGML_AVX512_BF16=$(on_off avx512_bf16)" ;;
    *) echo "bench-llama-cpp.sh: unknown instruction set '$isa' (avx2 or avx512)" >&2; exit 2 ;;
esac
venv="${venv:-$here/.cache/bench-llama-cpp-$isa}"
pins="llama-cpp-python[server]==0.3.36"
python="$(CMAKE_ARGS="$cmake_args" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" PIP_NO_CACHE_DIR=1 "$here/peer-venv.sh" \
    "$venv" "$pins $cmake_args" "$pins for $isa (llama.cpp from source, a few minutes)" \
    --no-cache-dir --no-binary llama-cpp-python "$pins")"
echo "$isa $cmake_args" > "$venv/isa"
echo "$python"
