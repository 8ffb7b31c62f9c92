#!/usr/bin/env bash
# qwen-student trained and measured on NewCaledonia (issue 27), reproducible from nothing: the fixed-salt
# import and `split --seed 1` of nc-fixed-split.sh (so NS_NP is the split the prompted baseline's stream figures
# were measured on), LoRA training on a seeded sample of the training streams, the adapter against PEFT, the
# leaderboards with qwen-student beside every other generator, the prompted base model on the same next steps,
# and the feedback ablation. Every step resumes where it stopped when the script is run again. The adapter and
# everything else stay in WORK_DIR: the data must not be redistributed.
#
# The training budget is QWEN_STUDENT_TOKENS (default 200000, the first qwen-student in docs/results.md); each budget gets its
# own folder, WORK_DIR/tokens-N, for the adapter and every measurement of it.
#
# usage: runtimes/bench-qwen-student.sh [WORK_DIR]   (default ./qwen-student-run; needs ../shared/data and the
#        training environment, which `studentsim train` installs on first use; about 3 hours on 2 cores)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mkdir -p "${1:-qwen-student-run}" && cd "${1:-qwen-student-run}" && pwd)"
gguf="$root/runtimes/.cache/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
bin="$root/target/release/studentsim"
dev="$root/target/release/studentsim-dev"
[[ -x "$bin" && -x "$dev" ]] || (cd "$root" && cargo build --release)
[[ -f "$gguf" ]] || { echo "bench-qwen-student: $gguf is missing: run runtimes/setup.sh" >&2; exit 2; }
"$root/runtimes/nc-fixed-split.sh" "$work"
cd "$work"
tokens="${QWEN_STUDENT_TOKENS:-200000}"
mkdir -p "tokens-$tokens" && cd "tokens-$tokens"

# 1. qwen-student: k = 3 next steps without student context, each prompt with the previous attempt's FEEDBACK;
#    a seeded sample of whole training streams, $tokens tokens, none with a row over 2,048 tokens.
"$bin" --problems ../nc/problems train --input ../nc/split/train.jsonl --out adapter --no-stages --k 3 --context without \
    --feedback --max-tokens "$tokens" --max-row-tokens 2048 --batch 8 --lr 2e-4 --bf16 --save-steps 5

# 2. the adapter on the GGUF against PEFT on the folder it was trained on; decode speed with and without it
[[ -f adapter-bench.json ]] || { "$dev" --problems ../nc/problems bench adapter --adapter adapter --json > adapter-bench.partial && mv adapter-bench.partial adapter-bench.json; }

# 3. leaderboards: qwen-student in its training layout (next-step k = 3 with feedback) and in streams (--history 3)
"$bin" --problems ../nc/problems leaderboard --data ../nc --split-seed 1 --qwen-adapter adapter --out realism

# 4. the feedback ablation on the NS_OP next steps of step 3: no FEEDBACK section, and another student's
sample=realism/split/ns_op-sample-next.jsonl
next=(--problems ../nc/problems rollout next-step --input "$sample" --k 3 --seed 0 --jobs 2)
student=(--gguf "$gguf" --adapter adapter --layout fine-tuned --batch 1)
mkdir -p sims
"$bin" "${next[@]}" "${student[@]}" --out sims/ns_op-student-no-feedback.jsonl
"$bin" "${next[@]}" "${student[@]}" --feedback other --out sims/ns_op-student-other-feedback.jsonl
"$bin" --problems ../nc/problems feedback-uptake --real "$sample" \
    --sim qwen-student=realism/ns_op/next-k3-feedback-sample/qwen-student.jsonl \
    --sim no-feedback=sims/ns_op-student-no-feedback.jsonl --sim other-feedback=sims/ns_op-student-other-feedback.jsonl \
    --sim edits=realism/ns_op/next-k3-feedback-sample/edits.jsonl \
    --sim copy-last=realism/ns_op/next-k3-feedback-sample/copy-last.jsonl | tee feedback-next.md
"$bin" --problems ../nc/problems feedback-uptake --streams --real realism/split/ns_op-sample-streams.jsonl \
    --sim qwen-student=realism/ns_op/stream-sample/qwen-student.jsonl \
    --sim edits=realism/ns_op/stream-sample/edits.jsonl | tee feedback-streams.md

# 5. the prompted base model (the same GGUF without the adapter, chat layout) on the same NS_OP next steps
"$bin" "${next[@]}" --gguf "$gguf" --layout chat --batch 1 --feedback --out sims/ns_op-base-next.jsonl
"$bin" --problems ../nc/problems score --real "$sample" --sim qwen-student=realism/ns_op/next-k3-feedback-sample/qwen-student.jsonl \
    --sim qwen-base=sims/ns_op-base-next.jsonl --sim edits=realism/ns_op/next-k3-feedback-sample/edits.jsonl \
    --sim retrieval=realism/ns_op/next-k3-feedback-sample/retrieval.jsonl \
    --sim copy-last=realism/ns_op/next-k3-feedback-sample/copy-last.jsonl --out report/ns_op-next
echo "bench-qwen-student: leaderboards in $PWD/realism/leaderboards.md, base comparison in $PWD/report/ns_op-next" >&2
