"""The contract from JavaScript: ``js/read_collection.mjs`` (Node.js, packages pinned by
``js/package.json`` and ``js/package-lock.json``) lists the flights, calls GetFlightInfo and
DoGet on every endpoint over ``@grpc/grpc-js`` with our copy of the Flight protocol, decodes
the IPC payloads with ``apache-arrow``, and prints row count and checksums, which must match the
engine's own query.

``npm ci`` runs in ``tests/interop/.build/js`` (npm cache in ``.build/npm-cache``) and only
when the lock file or the Node.js version changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
PROJECT = HERE / "js"
MANIFESTS = ("package.json", "package-lock.json")
SCRIPT = "read_collection.mjs"
PROTO = HERE / "flight_protocol.proto"


def _install(folder: Path, digest: Callable[..., str]) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js (node and npm) is not installed")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    key = digest(version.stdout, *((PROJECT / name).read_bytes() for name in MANIFESTS))
    stamp = folder / ".installed"
    if not (stamp.is_file() and stamp.read_text() == key and (folder / "node_modules").is_dir()):
        stamp.unlink(missing_ok=True)
        for name in MANIFESTS:
            shutil.copyfile(PROJECT / name, folder / name)
        env = {**os.environ, "npm_config_update_notifier": "false"}
        done = subprocess.run(
            [
                npm,
                "ci",
                "--cache",
                str(folder.parent / "npm-cache"),
                "--prefer-offline",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
            ],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci failed in {folder}:\n{done.stdout}\n{done.stderr}")
        stamp.write_text(key)
    # the script resolves its packages from the node_modules beside it
    shutil.copyfile(PROJECT / SCRIPT, folder / SCRIPT)
    return folder / SCRIPT


@pytest.fixture(scope="session")
def js_client(build_cache: Any) -> list[str]:
    with build_cache.lock("js") as folder:
        script = _install(folder, build_cache.digest)
    node = shutil.which("node")
    assert node is not None
    return [node, str(script)]


def _run(js_client: list[str], uri: str, command: dict[str, Any]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*js_client, uri, json.dumps(command), str(PROTO)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_js_client_reads_the_collection(
    js_client: list[str],
    interop_server: Any,
    command: dict[str, Any],
    check_client_output: Callable[[str, dict[str, Any]], None],
) -> None:
    done = _run(js_client, interop_server.uri, command)
    assert done.returncode == 0, done.stderr
    check_client_output(done.stdout, command)


def test_js_client_reports_errors(js_client: list[str], interop_server: Any) -> None:
    done = _run(js_client, interop_server.uri, {"query": {"collection": "nope"}})
    assert done.returncode == 1
    assert "gRPC status 5" in done.stderr  # NOT_FOUND
    assert "[COLLECTION_NOT_FOUND]" in done.stderr
    assert "Traceback" not in done.stderr
