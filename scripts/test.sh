#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up (fetches and builds the runtime), formatting, a module map that
# names every source file, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
runtimes/setup.sh
cargo fmt --check
scripts/check-architecture.sh
cargo clippy --all-targets -- -D warnings
cargo test
