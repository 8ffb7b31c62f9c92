#!/usr/bin/env bash
# Rollouts against a real OpenAI-compatible server: llama-cpp-python's `llama_cpp.server` (the environment of
# runtimes/bench-llama-cpp.sh) serves the fetched Qwen2.5-Coder-0.5B-Instruct GGUF on loopback, and
# `rollout stream` and `rollout next-step` run against it with `--generator openai --concurrency 4`, once per
# endpoint (chat: the study's prompted layout; completions: the fine-tuned layout). Every row must be graded
# and carry the model's reply; the only error allowed is a reply without code (the instruct model often answers
# the fine-tuned layout with an empty `<code>` block), which is the model's doing, not the protocol's. Not part of
# the tests (it needs the 15-minute llama.cpp build).
#
# usage: runtimes/serve-rollouts.sh [OUT_DIR]   (default studentsim-out/served); PORT=8765 to change the port
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
out="${1:-$root/studentsim-out/served}"
port="${PORT:-8765}"
gguf="$here/.cache/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
studentsim="${STUDENTSIM:-$root/target/release/studentsim}"
[[ -f "$gguf" ]] || { echo "serve-rollouts: $gguf is missing (run runtimes/setup.sh)" >&2; exit 2; }
[[ -x "$studentsim" ]] || { echo "serve-rollouts: build first: cargo build --release" >&2; exit 2; }
python="$("$here/bench-llama-cpp.sh")"
mkdir -p "$out"

"$python" -m llama_cpp.server --model "$gguf" --model_alias qwen2.5-coder-0.5b-instruct --host 127.0.0.1 \
    --port "$port" --n_threads 2 --n_ctx 4096 > "$out/server.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 120); do
    curl -sf "http://127.0.0.1:$port/v1/models" > /dev/null && break
    kill -0 "$server" 2>/dev/null || { echo "serve-rollouts: the server exited (see $out/server.log)" >&2; exit 1; }
    sleep 1
done
curl -sf "http://127.0.0.1:$port/v1/models" > "$out/models.json"

# Three streams of the bundled examples: a few minutes of decoding on 2 cores.
python3 - "$root/examples/trajectories.jsonl" "$out/input.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = []
for r in rows:
    k = (r["student"], r["problem"])
    if k not in keys:
        keys.append(k)
keep = set(keys[:3])
open(sys.argv[2], "w").writelines(json.dumps(r) + "\n" for r in rows if (r["student"], r["problem"]) in keep)
PY

for endpoint in chat completions; do
    common=(--generator openai --base-url "http://127.0.0.1:$port/v1" --model qwen2.5-coder-0.5b-instruct
            --endpoint "$endpoint" --concurrency 4 --max-tokens 384 --seed 3 --input "$out/input.jsonl")
    "$studentsim" rollout stream "${common[@]}" --max-attempts 3 --out "$out/stream-$endpoint.jsonl"
    "$studentsim" rollout next-step "${common[@]}" --k 3 --out "$out/next-$endpoint.jsonl"
done

python3 - "$out" <<'PY'
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
bad = 0
for path in sorted(out.glob("*-*.jsonl")):
    rows = [json.loads(l) for l in open(path)]
    labels = {}
    for r in rows:
        g = r.get("generated") or {}
        error = g.get("error")
        problems = [k for k, ok in [("label", r.get("label") is not None), ("pass_rate", r.get("pass_rate") is not None),
                    ("raw reply", bool(g.get("raw"))),
                    ("no error but a reply without code", error is None or "holds no code" in error)] if not ok]
        if problems:
            bad += 1
            print(f"{path.name}: {r['problem']} attempt {r['attempt']}: missing {', '.join(problems)}: {g.get('error')}")
        labels[r.get("label")] = labels.get(r.get("label"), 0) + 1
    truncated = sum(1 for r in rows if (r.get("generated") or {}).get("truncated"))
    no_code = sum(1 for r in rows if "holds no code" in ((r.get("generated") or {}).get("error") or ""))
    print(f"{path.name}: {len(rows)} rows, labels {labels}, {truncated} cut at the token limit, {no_code} replies without code")
sys.exit(1 if bad else 0)
PY
