"""Codec stacks and named profiles (plain data; Zarr codecs are built by the I/O layer)."""

from .profiles import DEFAULT_PROFILE, auto_codecs, profile, profile_names
from .sharding import shard_decision
from .stack import CodecStack

__all__ = [
    "DEFAULT_PROFILE",
    "CodecStack",
    "auto_codecs",
    "profile",
    "profile_names",
    "shard_decision",
]
