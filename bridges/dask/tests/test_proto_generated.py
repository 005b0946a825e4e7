"""The committed stubs are what grpcio-tools generates from proto/proto/observe.proto: a schema
change must regenerate them (python bridges/dask/scripts/generate_proto.py)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "generate_proto.py"


def test_generated_code_matches_the_schema():
    spec = importlib.util.spec_from_file_location("generate_proto", SCRIPT)
    generate_proto = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate_proto)
    assert generate_proto.PROTO_FILE.exists(), generate_proto.PROTO_FILE
    assert generate_proto.stale_files() == [], (
        f"regenerate with: python {SCRIPT.relative_to(SCRIPT.parents[3])}"
    )


def test_grpc_module_imports_its_sibling_relatively():
    from taskscope_dask._proto import observe_pb2, observe_pb2_grpc

    assert observe_pb2_grpc.observe__pb2 is observe_pb2
    assert hasattr(observe_pb2_grpc, "ObserveStub")
