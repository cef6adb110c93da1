"""S3 back-end of the behaviour suite: a moto S3 server on the loopback interface.

The server starts on first use (once per test session, on a free port of 127.0.0.1) and stops
at exit. Every test gets a fresh bucket; collection ``name`` lives at ``s3://<bucket>/<name>``.
The suite passes plain URLs to ``zcollection.open_store``, so the endpoint, the (fake)
credentials, the region and ``allow_http`` reach obstore through the environment variables it
reads (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
``AWS_ALLOW_HTTP``), set for the duration of each test with ``monkeypatch``. The same options
may instead travel in the URL's query string, see :func:`query_url`.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import sys
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest


def _conftest_backend() -> Any:
    """Return ``Backend`` of tests/conftest.py (which is loading this module)."""
    conftest = Path(__file__).resolve().parent.parent / "conftest.py"
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve() == conftest and hasattr(module, "Backend"):
            return module.Backend
    raise RuntimeError("tests/backends/s3.py must be loaded by tests/conftest.py")


Backend = _conftest_backend()

ACCESS_KEY = "zcollection-test-key"
SECRET_KEY = "zcollection-test-secret"
REGION = "us-east-1"

_lock = threading.Lock()
_server: Any = None
_endpoint: str | None = None
_client: Any = None


def endpoint() -> str:
    """Return the URL of the session's moto S3 server, starting it on first use."""
    global _server, _endpoint, _client
    with _lock:
        if _endpoint is None:
            import boto3
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            atexit.register(server.stop)
            _server = server
            _endpoint = f"http://{host}:{port}"
            _client = boto3.client(
                "s3",
                endpoint_url=_endpoint,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
                region_name=REGION,
            )
        return _endpoint


def s3_client() -> Any:
    """Return a boto3 S3 client of the session's moto server."""
    endpoint()
    return _client


def new_bucket() -> str:
    """Create an empty bucket with a unique name and return its name."""
    name = f"zc-{uuid.uuid4().hex[:16]}"
    s3_client().create_bucket(Bucket=name)
    return name


def environment() -> dict[str, str]:
    """Return the environment variables that point obstore at the moto server."""
    return {
        "AWS_ENDPOINT_URL": endpoint(),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
        "AWS_ALLOW_HTTP": "true",
    }


def query_url(bucket: str, name: str) -> str:
    """Return the self-contained URL form (options in the query string) of a collection."""
    query = urlencode(
        {
            "endpoint_url": endpoint(),
            "allow_http": "true",
            "region": REGION,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
        },
        safe=":/",
    )
    return f"s3://{bucket}/{name}?{query}"


def use_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point obstore at the moto server for the current test (undone by ``monkeypatch``)."""
    for key in ("AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environment().items():
        monkeypatch.setenv(key, value)


def _s3(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    use_environment(request.getfixturevalue("monkeypatch"))
    bucket = new_bucket()
    return Backend("s3", lambda name: f"s3://{bucket}/{name}")


#: Only when the optional dependencies (obstore, moto with its server, boto3) are installed.
FACTORIES = (
    {"s3": _s3}
    if all(importlib.util.find_spec(name) for name in ("obstore", "moto", "boto3", "flask"))
    else {}
)
