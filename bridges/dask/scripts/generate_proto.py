#!/usr/bin/env python3
"""Generate the Python code for taskscope's Observe gRPC schema.

Runs grpcio-tools' protoc on ``proto/proto/observe.proto`` (the schema the Rust crates compile)
and writes ``observe_pb2.py``, ``observe_pb2.pyi`` and ``observe_pb2_grpc.py`` to
``bridges/dask/src/taskscope_dask/_proto/``, with the ``_grpc`` module importing its sibling
relatively (protoc writes ``import observe_pb2``, which only works with ``_proto`` on sys.path).

Usage:
    python bridges/dask/scripts/generate_proto.py          # rewrite the committed files
    python bridges/dask/scripts/generate_proto.py --check  # exit 1 if they are out of date

Needs grpcio-tools at the version pinned in bridges/dask/pyproject.toml (the ``test`` extra):
another version generates different code.
"""
import os
import sys
import tempfile
from pathlib import Path

BRIDGE = Path(__file__).resolve().parent.parent
REPO = BRIDGE.parent.parent
PROTO_DIR = REPO / "proto" / "proto"
PROTO_FILE = PROTO_DIR / "observe.proto"
OUT_DIR = BRIDGE / "src" / "taskscope_dask" / "_proto"
FILES = ("observe_pb2.py", "observe_pb2.pyi", "observe_pb2_grpc.py")


def generate(out_dir: Path) -> None:
    """Writes the generated modules to ``out_dir``."""
    from grpc_tools import protoc  # imported here: only generation needs grpcio-tools

    include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(PROTO_FILE),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO_FILE}")
    grpc_module = out_dir / "observe_pb2_grpc.py"
    text = grpc_module.read_text()
    fixed = text.replace(
        "import observe_pb2 as observe__pb2", "from . import observe_pb2 as observe__pb2"
    )
    if fixed == text:
        raise RuntimeError("protoc's import of observe_pb2 changed: update generate_proto.py")
    grpc_module.write_text(fixed)


def stale_files(committed: Path = OUT_DIR) -> list[str]:
    """Names of the committed files that differ from freshly generated ones."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        return [
            name
            for name in FILES
            if not (committed / name).exists()
            or (committed / name).read_bytes() != (fresh / name).read_bytes()
        ]


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        stale = stale_files()
        if stale:
            print(f"out of date: {', '.join(stale)}; run {os.path.relpath(__file__)}")
            return 1
        return 0
    if argv[1:]:
        print(__doc__)
        return 2
    generate(OUT_DIR)
    print(f"wrote {', '.join(FILES)} to {OUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
