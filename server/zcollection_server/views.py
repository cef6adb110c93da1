"""Views over served collections: actions and read sources (views live in ``_views/``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zcollection as zc

from .errors import Unimplemented
from .sources import Source

if TYPE_CHECKING:
    from .actions import ActionHandlers
    from .server import ZCollectionFlightServer


def view_source(
    server: ZCollectionFlightServer, name: str, collection: zc.Collection, view: str
) -> Source:
    """Return the read source of view ``view`` of collection ``name``."""
    raise Unimplemented("views are not served yet")


def view_handlers(actions: ActionHandlers) -> dict[str, Callable[[Any, Any], Any]]:
    """Return the view actions."""
    return {}
