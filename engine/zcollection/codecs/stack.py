"""The persisted codec pipeline of one variable, held as plain JSON data."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ..errors import SchemaError


def _check_descriptor(codec: Any, slot: str) -> dict[str, Any]:
    if not isinstance(codec, dict) or not isinstance(codec.get("name"), str):
        raise SchemaError(f"{slot}: a codec is a {{'name': ..., 'configuration': ...}} dict")
    out: dict[str, Any] = {"name": codec["name"]}
    conf = codec.get("configuration")
    if conf is not None:
        if not isinstance(conf, dict):
            raise SchemaError(f"{slot}: codec {codec['name']!r} configuration must be a dict")
        out["configuration"] = copy.deepcopy(conf)
    return out


@dataclass(frozen=True)
class CodecStack:
    """The persisted codec pipeline for one variable.

    Codecs are JSON-clean ``{"name": ..., "configuration": ...}`` dicts; only the I/O layer
    turns them into Zarr codecs.
    """

    array_to_array: tuple[dict[str, Any], ...] = ()
    array_to_bytes: dict[str, Any] | None = None
    bytes_to_bytes: tuple[dict[str, Any], ...] = ()
    sharded: bool = False
    shard_target_bytes: int | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "array_to_array",
            tuple(_check_descriptor(c, "array_to_array") for c in self.array_to_array),
        )
        if self.array_to_bytes is not None:
            object.__setattr__(
                self, "array_to_bytes", _check_descriptor(self.array_to_bytes, "array_to_bytes")
            )
        object.__setattr__(
            self,
            "bytes_to_bytes",
            tuple(_check_descriptor(c, "bytes_to_bytes") for c in self.bytes_to_bytes),
        )
        if self.sharded and (self.shard_target_bytes is None or self.shard_target_bytes <= 0):
            raise SchemaError("a sharded codec stack needs a positive shard_target_bytes")
        if not self.sharded:
            object.__setattr__(self, "shard_target_bytes", None)

    def __hash__(self) -> int:
        import json

        return hash(json.dumps(self.to_json(), sort_keys=True))

    def to_json(self) -> dict[str, Any]:
        """Return the codec stack as a JSON-serialisable dictionary."""
        return {
            "array_to_array": [copy.deepcopy(c) for c in self.array_to_array],
            "array_to_bytes": copy.deepcopy(self.array_to_bytes),
            "bytes_to_bytes": [copy.deepcopy(c) for c in self.bytes_to_bytes],
            "sharded": self.sharded,
            "shard_target_bytes": self.shard_target_bytes,
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> CodecStack:
        """Build a codec stack from its JSON representation."""
        if not isinstance(payload, dict):
            raise SchemaError("codecs must be a JSON object")
        return cls(
            array_to_array=tuple(payload.get("array_to_array") or ()),
            array_to_bytes=payload.get("array_to_bytes"),
            bytes_to_bytes=tuple(payload.get("bytes_to_bytes") or ()),
            sharded=bool(payload.get("sharded", False)),
            shard_target_bytes=payload.get("shard_target_bytes"),
        )
