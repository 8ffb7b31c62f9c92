#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up (fetches and builds the runtime), formatting, lints, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
runtimes/setup.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
