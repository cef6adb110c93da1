"""Remote back-ends: a Flight server on 127.0.0.1, port 0, over each store back-end.

``remote-<kind>`` serves collections stored on the ``<kind>`` back-end; the behaviour suite
reaches them through ``grpc://127.0.0.1:<port>/<name>`` URLs, i.e. through the client.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def _remote(base_kind: str) -> Callable[[pytest.FixtureRequest, Path], Any]:
    def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
        conftest = __import__("sys").modules[_conftest_name()]
        from zcollection_server import ServerSettings, ZCollectionFlightServer
        from zcollection_server.registry import join_url

        base = conftest.BACKEND_FACTORIES[base_kind](request, tmp_path)
        root = base.url("served")
        server = ZCollectionFlightServer(ServerSettings(root=root, host="127.0.0.1", port=0))
        request.addfinalizer(server.shutdown)
        return conftest.Backend(
            f"remote-{base_kind}",
            lambda name: f"grpc://127.0.0.1:{server.port}/{name}",
            lambda name: join_url(root, name),
        )

    return factory


def _conftest_name() -> str:
    import sys

    for name, module in sys.modules.items():
        if hasattr(module, "BACKEND_FACTORIES") and hasattr(module, "Backend"):
            return name
    raise RuntimeError("tests/conftest.py is not loaded")


#: Remote back-ends over the store kinds that exist when the plug-ins load.
FACTORIES = {f"remote-{kind}": _remote(kind) for kind in ("memory", "local")}
