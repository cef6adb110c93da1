"""Reading the JSON documents a collection or a view keeps beside its Zarr nodes."""

from __future__ import annotations

import json
from typing import Any

from .errors import FormatVersionError, StoreError


def read_document(raw: bytes, *, what: str, where: str, newest: int) -> dict[str, Any]:
    """Parse a versioned JSON document (a ``_zcollection.json`` or a view config).

    Raises:
        StoreError: If the bytes are not a JSON object with a valid ``format_version``.
        FormatVersionError: If the document was written by a newer format than ``newest``.
    """
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"corrupt {what} config at {where}: {exc}") from exc
    if not isinstance(payload, dict):
        raise StoreError(f"corrupt {what} config at {where}: not a JSON object")
    version = payload.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise StoreError(f"corrupt {what} config at {where}: format_version {version!r}")
    if version > newest:
        raise FormatVersionError(
            f"{what} at {where} has format_version {version!r}; this library reads up to "
            f"{newest}: upgrade zcollection"
        )
    return payload
