"""Process-wide settings, read as ``zcollection.config["partition.concurrency"]``."""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from typing import Any

#: Rows a streamed insert holds before it writes the partitions the stream has moved past
#: (the default ``buffer_bytes`` of ``Collection.insert_stream``).
STREAM_BUFFER_BYTES = 32 * 1024 * 1024

_DEFAULTS: dict[str, Any] = {
    # Number of partitions read or written at the same time.
    "partition.concurrency": 8,
    # dask.distributed Client that Collection.map/update run partitions on (None: in-process).
    "dask.client": None,
}


class Config(MutableMapping[str, Any]):
    """A dict of known settings; unknown keys are refused so typos surface."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self._defaults = dict(defaults)
        self._values = dict(defaults)
        env = os.environ.get("ZCOLLECTION_PARTITION_CONCURRENCY")
        if env:
            self["partition.concurrency"] = int(env)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self._defaults:
            raise KeyError(f"unknown zcollection setting {key!r}; known: {sorted(self._defaults)}")
        if key == "partition.concurrency" and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError("partition.concurrency must be a positive integer")
        if key == "dask.client" and value is not None and not hasattr(value, "submit"):
            raise ValueError("dask.client must be a distributed.Client or None")
        self._values[key] = value

    def __delitem__(self, key: str) -> None:
        self._values[key] = self._defaults[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def reset(self) -> None:
        """Restore every setting to its default."""
        self._values = dict(self._defaults)

    def __repr__(self) -> str:
        return f"Config({self._values!r})"


config = Config(_DEFAULTS)
