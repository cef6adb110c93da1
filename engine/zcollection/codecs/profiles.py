"""Named codec profiles."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy

from .stack import CodecStack

#: Name of the profile used when no codecs= is given on a variable.
DEFAULT_PROFILE = "cloud-balanced"

_MIB = 1024 * 1024
_BYTES_LE: dict[str, Any] = {"name": "bytes", "configuration": {"endian": "little"}}


def _zstd(level: int) -> dict[str, Any]:
    return {"name": "zstd", "configuration": {"level": level, "checksum": False}}


_PROFILES: dict[str, CodecStack] = {
    "local-fast": CodecStack(array_to_bytes=_BYTES_LE, bytes_to_bytes=(_zstd(3),)),
    "cloud-balanced": CodecStack(
        array_to_bytes=_BYTES_LE,
        bytes_to_bytes=(_zstd(3),),
        sharded=True,
        shard_target_bytes=128 * _MIB,
    ),
    "cloud-cold": CodecStack(
        array_to_bytes=_BYTES_LE,
        bytes_to_bytes=(_zstd(9),),
        sharded=True,
        shard_target_bytes=512 * _MIB,
    ),
}


def profile_names() -> tuple[str, ...]:
    """Return the names of all registered codec profiles."""
    return tuple(_PROFILES)


def profile(
    name: str | None = None,
    *,
    filters: Iterable[dict[str, Any]] | None = None,
    compressor: dict[str, Any] | None = None,
) -> CodecStack:
    """Build a CodecStack from a named profile, with overrides.

    Raises:
        KeyError: If ``name`` is not a registered profile.
    """
    key = DEFAULT_PROFILE if name is None else name
    if key not in _PROFILES:
        raise KeyError(f"unknown codec profile {key!r}; known: {', '.join(_PROFILES)}")
    base = _PROFILES[key]
    return CodecStack(
        array_to_array=tuple(filters) if filters is not None else base.array_to_array,
        array_to_bytes=base.array_to_bytes,
        bytes_to_bytes=(compressor,) if compressor is not None else base.bytes_to_bytes,
        sharded=base.sharded,
        shard_target_bytes=base.shard_target_bytes,
    )


def auto_codecs(dtype: numpy.dtype[Any] | Any, profile_name: str | None = None) -> CodecStack:
    """Pick a CodecStack for a variable using the named profile (dtype reserved)."""
    del dtype  # reserved for dtype-specific profiles
    return profile(profile_name)
