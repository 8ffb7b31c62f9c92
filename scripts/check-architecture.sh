#!/usr/bin/env bash
# Lists the source files docs/ARCHITECTURE.md does not mention; exits 1 if there is one, 0 silently otherwise.
#
# The rule: every file under src/ whose name ends in .rs must be named in docs/ARCHITECTURE.md by its whole path
# relative to src/ (e.g. `score/tutor.rs`; `src/score/tutor.rs` counts too). "Whole" means the path is not the
# tail of a longer one: `cli/score/shards.rs` does not mention `score/shards.rs`. A directory does not cover the
# files under it (prose names directories such as `qwen/` all the time, so a new file would slip through).
#
# SRC_DIR and ARCHITECTURE (defaults: src and docs/ARCHITECTURE.md of this repository) may point elsewhere, for
# checking the check itself.
set -euo pipefail
cd "$(dirname "$0")/.."

src_dir=${SRC_DIR:-src}
doc=${ARCHITECTURE:-docs/ARCHITECTURE.md}
[[ -d $src_dir ]] || { echo "check-architecture: no folder $src_dir" >&2; exit 2; }
[[ -f $doc ]] || { echo "check-architecture: no file $doc" >&2; exit 2; }

missing=0
while IFS= read -r -d '' file; do
    rel=${file#"$src_dir"/}
    escaped=$(printf '%s' "$rel" | sed 's/[][\.*^$+?(){}|]/\\&/g')
    # not preceded by a path character (else it is a longer path's tail), not followed by a name character
    if ! grep -Eq "(^|[^A-Za-z0-9_./-])(src/)?${escaped}(\$|[^A-Za-z0-9_])" "$doc"; then
        echo "$rel"
        missing=1
    fi
done < <(find "$src_dir" -type f -name '*.rs' -print0 | sort -z)
exit "$missing"
