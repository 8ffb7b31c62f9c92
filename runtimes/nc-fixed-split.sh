#!/usr/bin/env bash
# NewCaledonia imported into WORK_DIR/nc with a fixed salt and split with seed 1 (each step skipped where its
# output is already there): the split docs/results.md's qwen-student and prompted-baseline figures are measured on.
# The salt is fixed so the split is the same on every machine; NewCaledonia's ids are pseudonyms already, so a
# fixed salt hides nothing.
#
# usage: runtimes/nc-fixed-split.sh WORK_DIR   (needs ../shared/data, or STUDENTSIM_NC_DATA)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:?usage: runtimes/nc-fixed-split.sh WORK_DIR}"
data="${STUDENTSIM_NC_DATA:-$root/../shared/data/newcaledonia}"
bin="$root/target/release/studentsim"
[[ -x "$bin" ]] || (cd "$root" && cargo build --release)
mkdir -p "$work" && cd "$work"
if [[ ! -f nc/trajectories.jsonl ]]; then
    printf 'studentsim prompted-baseline salt' > salt.txt
    "$bin" import newcaledonia "$data" --out nc --salt-file salt.txt
fi
[[ -f nc/split/ns_np.jsonl ]] || "$bin" split --input nc/trajectories.jsonl --out nc/split --seed 1
