#!/usr/bin/env bash
# The whole test suite: every Rust test (the TUI's end-to-end test drives `taskscope top` in
# tmux), then the Dask bridge's pytest suite on a real LocalCluster. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v tmux >/dev/null; then
    echo "installing tmux (the TUI end-to-end test drives taskscope top inside it)" >&2
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq tmux >/dev/null
fi

cargo test --workspace --locked

if [ -x bridges/dask/run-tests.sh ]; then
    cargo build --locked --bin taskscope
    TASKSCOPE_BIN="$PWD/target/debug/taskscope" bridges/dask/run-tests.sh
fi
