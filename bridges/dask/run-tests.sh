#!/usr/bin/env bash
# Tests of the taskscope-dask bridge, on real Dask LocalClusters.
#
#   bridges/dask/run-tests.sh [PYTEST ARGS...]
#
# Creates a virtualenv (if missing) at $TASKSCOPE_BRIDGE_VENV (default: target/bridge-venv under
# the repository root), installs the bridge with its test extras into it, and runs pytest on
# bridges/dask/tests. The tests run the taskscope binary named by $TASKSCOPE_BIN (default:
# `taskscope` on PATH).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${TASKSCOPE_BRIDGE_VENV:-$repo/target/bridge-venv}"
python="${PYTHON:-python3}"

if ! command -v "$python" >/dev/null; then
    echo "run-tests.sh: $python not found; install Python 3.10 or newer" >&2
    exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        # Debian and Ubuntu ship venv (and ensurepip) separately.
        rm -rf "$venv"
        echo "run-tests.sh: python3 -m venv failed; installing python3-venv" >&2
        if command -v apt-get >/dev/null; then
            sudo=""
            [ "$(id -u)" -ne 0 ] && sudo="sudo"
            $sudo apt-get update -qq
            version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
            $sudo apt-get install -y -qq python3-venv "python$version-venv" >/dev/null \
                || $sudo apt-get install -y -qq python3-venv >/dev/null
        fi
        "$python" -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
fi

# Reinstalled every run, so the tests see the current sources; without build isolation, a run
# whose dependencies are all installed needs no network.
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" "setuptools>=77"
"${pip[@]}" --no-build-isolation "$here[test]"

cd "$here"
exec "$venv/bin/python" -m pytest tests "$@"
