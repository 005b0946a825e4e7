#!/usr/bin/env bash
# The whole test suite: every Rust test (the TUI's end-to-end test drives `taskscope top` in
# tmux, the report's opens in headless Chromium), then the Dask bridge's pytest suite on a real
# LocalCluster, then the Python wheel in a fresh venv (scripts/test-wheel.sh). Installs what it
# needs.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v tmux >/dev/null || missing+=(tmux)
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (the TUI end-to-end test drives taskscope top in tmux; the" \
        "report test opens pages in headless Chromium)" >&2
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cargo test --workspace --locked

if [ -x bridges/dask/run-tests.sh ]; then
    cargo build --locked --bin taskscope
    TASKSCOPE_BIN="$PWD/target/debug/taskscope" bridges/dask/run-tests.sh
fi

# The Python user's way in: the wheel (binary + taskscope_dask) in a fresh venv without Rust.
scripts/test-wheel.sh
