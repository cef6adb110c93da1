"""The contract from C++: ``cpp/flight_client.cc``, compiled here with ``g++ -std=c++20`` against
the Arrow C++ headers and the Flight library shipped in the installed pyarrow wheel, lists the
flights, calls GetFlightInfo and DoGet on every endpoint, and prints row count and checksums,
which must match the engine's own query.

The binary is cached in ``tests/interop/.build/cpp`` under a key of the source, the compiler and
the pyarrow build, so only the first run compiles (a few seconds)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

SOURCE = Path(__file__).parent / "cpp" / "flight_client.cc"
LIBRARIES = ("arrow_flight", "arrow")


def _find_library(name: str) -> Path | None:
    """The shared library ``name`` in the wheel: ``libNAME.so``, else a versioned file."""
    for directory in pa.get_library_dirs():
        candidates = [
            *Path(directory).glob(f"lib{name}.so*"),
            *Path(directory).glob(f"lib{name}.*dylib"),
        ]
        if candidates:
            return min(candidates, key=lambda path: (len(path.name), path.name))
    return None


def _build(cache: Path, digest: Callable[..., str]) -> Path:
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("g++ is not installed")
    include = Path(pa.get_include())
    if not (include / "arrow" / "flight" / "api.h").is_file():
        pytest.skip(f"the pyarrow wheel ships no Arrow Flight C++ headers in {include}")
    libraries = [_find_library(name) for name in LIBRARIES]
    if None in libraries:
        missing = [n for n, lib in zip(LIBRARIES, libraries, strict=True) if lib is None]
        pytest.skip(f"the pyarrow wheel ships no {missing} library in {pa.get_library_dirs()}")
    paths = [lib.resolve() for lib in libraries if lib is not None]
    command = [
        compiler,
        "-std=c++20",
        "-O1",
        f"-I{include}",
        str(SOURCE),
        *map(str, paths),
        *(f"-Wl,-rpath,{directory}" for directory in sorted({str(p.parent) for p in paths})),
    ]
    version = subprocess.run(
        [compiler, "--version"], capture_output=True, text=True, check=True
    ).stdout
    key = digest(SOURCE.read_bytes(), version, pa.__version__, *command)
    binary = cache / f"flight_client-{key}"
    if binary.is_file():
        return binary
    partial = cache / f".{binary.name}.{os.getpid()}"
    done = subprocess.run(
        [*command, "-o", str(partial)], capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        pytest.fail(f"compiling {SOURCE.name} failed:\n{' '.join(command)}\n{done.stderr}")
    partial.replace(binary)
    for old in cache.glob("flight_client-*"):
        if old != binary:
            old.unlink(missing_ok=True)
    return binary


@pytest.fixture(scope="session")
def cpp_client(build_cache: Any) -> Path:
    with build_cache.lock("cpp") as cache:
        return _build(cache, build_cache.digest)


def test_cpp_client_reads_the_collection(
    cpp_client: Path,
    interop_server: Any,
    command: dict[str, Any],
    check_client_output: Callable[[str, dict[str, Any]], None],
) -> None:
    done = subprocess.run(
        [str(cpp_client), interop_server.uri, json.dumps(command)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    check_client_output(done.stdout, command)


def test_cpp_client_reports_errors(cpp_client: Path, interop_server: Any) -> None:
    command = {"query": {"collection": "nope"}}
    done = subprocess.run(
        [str(cpp_client), interop_server.uri, json.dumps(command)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "[COLLECTION_NOT_FOUND]" in done.stderr
    assert "Traceback" not in done.stderr
