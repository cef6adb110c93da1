"""The committed protobuf modules are exactly what protoc generates from the .proto files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"
PACKAGE = PROTO_ROOT / "zcollection_proto"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "zcollection_proto_generate", PROTO_ROOT / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    generated = _generator().generate(tmp_path)
    assert generated
    fresh = {p.name: p.read_text() for p in (tmp_path / "zcollection_proto").iterdir()}
    committed = {
        p.name: p.read_text()
        for p in PACKAGE.iterdir()
        if p.name.endswith(("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"))
    }
    assert sorted(fresh) == sorted(committed), "stale or missing generated files"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"regenerate with: python proto/generate.py ({stale} differ)"
    protos = sorted(p.stem for p in PACKAGE.glob("*.proto"))
    assert sorted({name.split("_pb2")[0] for name in fresh}) == protos


def test_protos_declare_the_versioned_package() -> None:
    for path in PACKAGE.glob("*.proto"):
        text = path.read_text()
        assert 'syntax = "proto3";' in text
        assert "package zcollection.flight.v1;" in text
