#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up (fetches and builds the runtime), formatting, a module map that
# names every source file, lints, every test.
#
# Two things keep a cold run short on 2 cores (docs/results.md, "The test suite"):
# - The set-up, which mostly waits on the network, runs while cargo compiles; its output is shown when it ends.
# - Clippy lints our crate while `cargo test` compiles it: clippy-driver is the workspace's compiler wrapper, as
#   `cargo clippy --all-targets -- -D warnings` makes it, but here it also generates code. `cargo clippy` would
#   check every dependency a second time, six minutes on a cold machine. CLIPPY_ARGS is how cargo-clippy hands
#   its arguments to clippy-driver (split on `__CLIPPY_HACKERY__`).
set -euo pipefail
cd "$(dirname "$0")/.."

clippy_driver="$(command -v clippy-driver || true)"
[[ -n $clippy_driver ]] || { echo "scripts/test.sh: no clippy-driver on PATH (rustup component add clippy)" >&2; exit 2; }

setup_log="$(mktemp)"
runtimes/setup.sh >"$setup_log" 2>&1 &
setup_pid=$!
trap 'kill "$setup_pid" 2>/dev/null || true; rm -f "$setup_log"' EXIT

cargo fmt --check
scripts/check-architecture.sh

export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
cargo test --no-run

setup_status=0
wait "$setup_pid" || setup_status=$?
cat "$setup_log" >&2
[[ $setup_status == 0 ]] || { echo "scripts/test.sh: runtimes/setup.sh failed (exit $setup_status)" >&2; exit 1; }

# The unit tests with candle's thread pool as wide as the machine: the kernels' tests there cover its several
# workers. The integration tests run two at a time, so a model test whose pool took every core had the pool's
# spinning workers compete with the other test (the real model's greedy test took 127 s beside the others, 37 s
# alone); with one thread each the integration tests took 297 s instead of 338 s here.
cargo test --lib --bins
cargo test --doc
CANDLE_NUM_THREADS=1 cargo test --test integration --test host_limits
