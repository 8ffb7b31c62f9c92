#!/usr/bin/env bash
# The prompted baseline's stream run on NewCaledonia's NS_NP (issue 10 part 6), with the other stream generators
# on the same streams and the score, reproducible from nothing: the fixed-salt import and `split --seed 1` of
# runtimes/nc-fixed-split.sh, then `rollout stream` of the real model (resumable: rerun to go on where it stopped).
# The model needs both cores to itself (candle's thread pool spins when anything else runs): about 1-1.5
# attempts a minute on 2 cores.
#
# usage: runtimes/bench-prompted-streams.sh [WORK_DIR]   (default ./prompted-baseline; needs ../shared/data)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mkdir -p "${1:-prompted-baseline}" && cd "${1:-prompted-baseline}" && pwd)"
gguf="$root/runtimes/.cache/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
bin="$root/target/release/studentsim"
[[ -x "$bin" ]] || (cd "$root" && cargo build --release)
[[ -f "$gguf" ]] || { echo "bench-prompted-streams: $gguf is missing: run runtimes/setup.sh" >&2; exit 2; }
"$root/runtimes/nc-fixed-split.sh" "$work"
cd "$work"
mkdir -p sims/ns_np report
stream=(--problems nc/problems rollout stream --input nc/split/ns_np.jsonl --max-attempts 10 --seed 0)
"$bin" "${stream[@]}" --gguf "$gguf" --layout chat --batch 1 --jobs 2 --out sims/ns_np/qwen-stream.jsonl
for generator in retrieval edits copy-last; do
    "$bin" "${stream[@]}" --generator "$generator" --train nc/split/train.jsonl --out "sims/ns_np/$generator-stream.jsonl"
done
"$bin" --problems nc/problems score --real nc/split/ns_np.jsonl --sim qwen-inst-0.5b=sims/ns_np/qwen-stream.jsonl \
    --sim retrieval=sims/ns_np/retrieval-stream.jsonl --sim edits=sims/ns_np/edits-stream.jsonl \
    --sim copy-last=sims/ns_np/copy-last-stream.jsonl --out report/ns_np-streams
echo "bench-prompted-streams: report in $work/report/ns_np-streams" >&2
