"""The optional catalog of partition paths, ``_catalog/state.json``."""

from __future__ import annotations

import hashlib
import json
import logging
import operator
from collections.abc import Iterable

from ..errors import StoreError

CATALOG_KEY = "_catalog/state.json"
_log = logging.getLogger(__name__)


def checksum(paths: Iterable[str]) -> str:
    """Return ``sha256:<hex>`` of the concatenation of ``path + "\\n"`` over sorted paths."""
    ordered = list(paths)
    text = "\n".join(ordered) + "\n" if ordered else ""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def encode(paths: Iterable[str]) -> bytes:
    """Return the catalog document for ``paths``."""
    ordered = sorted(set(paths))
    doc = {"format_version": 1, "paths": ordered, "checksum": checksum(ordered)}
    return json.dumps(doc).encode()


def decode(raw: bytes) -> list[str] | None:
    """Return the catalog's paths, or None when the document is corrupt or its checksum fails."""
    try:
        doc = json.loads(raw)
        paths = doc["paths"]
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise StoreError("catalog paths must be a list of strings")
    except (ValueError, KeyError, TypeError, StoreError) as exc:
        _log.warning("ignoring corrupt partition catalog: %s", exc)
        return None
    expected = doc.get("checksum")
    # written sorted and unique: checking that is cheaper than sorting again
    ordered = paths if all(map(operator.lt, paths, paths[1:])) else sorted(set(paths))
    if expected is not None and expected != checksum(ordered):
        _log.warning("partition catalog checksum mismatch; listing the store instead")
        return None
    return ordered
