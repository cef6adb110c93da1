"""Regenerate the protobuf Python modules of ``zcollection_proto``.

Usage (from the repository root)::

    .venv/bin/python proto/generate.py            # writes proto/zcollection_proto/*_pb2.py(i)
    .venv/bin/python proto/generate.py OUT_DIR    # writes OUT_DIR/zcollection_proto/...

It is the equivalent of::

    python -m grpc_tools.protoc -I proto --python_out=proto --pyi_out=proto \
        proto/zcollection_proto/*.proto
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

#: The source root holding ``zcollection_proto/*.proto``.
PROTO_ROOT = Path(__file__).resolve().parent
#: The package directory.
PACKAGE = "zcollection_proto"


def proto_files(root: Path = PROTO_ROOT) -> list[Path]:
    """Return the ``.proto`` files of the package, sorted."""
    return sorted((root / PACKAGE).glob("*.proto"))


def generate(out_dir: Path = PROTO_ROOT) -> list[Path]:
    """Run protoc on every ``.proto`` file; return the generated files.

    Raises:
        RuntimeError: If protoc reports an error.
    """
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    files = [p.relative_to(PROTO_ROOT).as_posix() for p in proto_files()]
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        *(str(PROTO_ROOT / f) for f in files),
    ]
    status = protoc.main(args)
    if status != 0:
        raise RuntimeError(f"protoc failed with status {status}")
    generated = []
    for name in files:
        stem = name.removesuffix(".proto")
        generated += [out_dir / f"{stem}_pb2.py", out_dir / f"{stem}_pb2.pyi"]
    return generated


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else PROTO_ROOT
    for path in generate(out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
