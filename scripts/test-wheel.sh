#!/usr/bin/env bash
# The Python user's way in, tested as they would meet it: builds the `taskscope` wheel (the
# binary plus taskscope_dask), installs it into a fresh virtualenv with no Rust toolchain on
# PATH, and runs `taskscope --version`, `trace()` around real LocalCluster jobs, the report and
# its HTML view, and examples/notebook.ipynb through nbclient; then lints the bridge (ruff,
# mypy --strict) and checks that `python -m pip install .` followed by `taskscope demo` works.
#
#   scripts/test-wheel.sh
#
# Needs python3 (3.10+) and cargo; installs maturin and the test tools from PyPI into
# target/wheel-venvs/. The wheel is built with Cargo.toml's `wheel` profile.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
python="${PYTHON:-python3}"
venvs="$repo/target/wheel-venvs"
wheels="$repo/target/wheels"
pip_quiet=(--quiet --disable-pip-version-check)

fresh_venv() {
    rm -rf "$1"
    mkdir -p "$(dirname "$1")"
    if ! "$python" -m venv "$1" 2>/dev/null; then
        # Debian and Ubuntu ship venv (and ensurepip) separately.
        rm -rf "$1"
        echo "test-wheel.sh: python3 -m venv failed; installing python3-venv" >&2
        sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        version="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        $sudo apt-get install -y -qq python3-venv "python$version-venv" >/dev/null \
            || $sudo apt-get install -y -qq python3-venv >/dev/null
        "$python" -m venv "$1"
    fi
    "$1/bin/python" -m pip install "${pip_quiet[@]}" --upgrade pip
}

# 1. The wheel a release would upload: `pip wheel .` (maturin from PyPI, in build isolation).
build="$venvs/build"
[ -x "$build/bin/python" ] || fresh_venv "$build"
rm -rf "$wheels"
start=$(date +%s)
"$build/bin/python" -m pip wheel "${pip_quiet[@]}" --no-deps --wheel-dir "$wheels" .
wheel="$(ls "$wheels"/taskscope-*.whl)"
echo "test-wheel.sh: built $(basename "$wheel"): $(du -k "$wheel" | cut -f1) KiB in $(($(date +%s) - start)) s"

# 2. A fresh venv, and no cargo, rustc or TASKSCOPE_BIN from here on.
user="$venvs/user"
fresh_venv "$user"
no_rust_path="$(printf '%s' "$PATH" | tr ':' '\n' \
    | while read -r dir; do
        [ -n "$dir" ] && [ ! -x "$dir/cargo" ] && [ ! -x "$dir/rustc" ] && printf '%s:' "$dir"
    done)"
no_rust_path="$user/bin:${no_rust_path%:}"
run() { env -u TASKSCOPE_BIN PATH="$no_rust_path" "$@"; }
if run sh -c 'command -v cargo' >/dev/null; then
    echo "test-wheel.sh: cargo is still on PATH" >&2
    exit 1
fi
run "$user/bin/python" -m pip install "${pip_quiet[@]}" "$wheel"
# Test tools, pinned where their verdict could change with a release.
run "$user/bin/python" -m pip install "${pip_quiet[@]}" pytest nbclient nbformat ipykernel \
    numpy pandas zstandard "mypy==2.4.1" "ruff==0.17.6"

run taskscope --version
run "$user/bin/python" -c "import taskscope_dask; print('taskscope_dask', taskscope_dask.__version__, 'runs', taskscope_dask.find_taskscope_bin())"

# 3. The bridge's lints, as the Rust side runs clippy.
(cd bridges/dask && run "$user/bin/ruff" check src tests/test_session.py \
    && run "$user/bin/mypy" --config-file pyproject.toml)

# 4. trace(), the report, its HTML view and the notebook, on the installed wheel.
(cd bridges/dask && TASKSCOPE_EXPECT_BUNDLED=1 run "$user/bin/python" -m pytest -q \
    -p no:cacheprovider tests/test_session.py)

# 5. `python -m pip install .` (builds from source: cargo is needed again), then the demo.
"$user/bin/python" -m pip install "${pip_quiet[@]}" --force-reinstall --no-deps .
demo="$(mktemp -d)"
(cd "$demo" && run taskscope demo -o demo.ndjson.zst >demo.txt && grep -q "memory-pressure" demo.txt)
rm -rf "$demo"
echo "test-wheel.sh: pip install . && taskscope demo: ok"
