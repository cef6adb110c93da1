"""Group paths: ``"/data_01/ku"`` <-> ``("data_01", "ku")``."""

from __future__ import annotations

from ..errors import SchemaError


def split_path(path: str) -> tuple[str, ...]:
    """Split an absolute or relative group path into its components."""
    parts = tuple(p for p in path.strip().split("/") if p)
    for part in parts:
        if part in (".", ".."):
            raise SchemaError(f"invalid group path {path!r}")
    return parts


def join_path(parts: tuple[str, ...] | list[str]) -> str:
    """Return the absolute path of a tuple of components."""
    return "/" + "/".join(parts)


def check_name(name: str, what: str) -> str:
    """Validate a short name of a dimension, variable or group."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise SchemaError(f"invalid {what} name {name!r}")
    if "\x00" in name:
        raise SchemaError(f"invalid {what} name {name!r}: NUL character")
    return name
