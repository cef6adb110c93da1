"""The shard shape rule of the on-disk format."""

from __future__ import annotations

import math
from collections.abc import Sequence


def shard_decision(
    shape: Sequence[int], chunks: Sequence[int], itemsize: int, target_bytes: int
) -> tuple[int, ...] | None:
    """Return the shard shape for an array, or None when sharding brings nothing.

    Start from the inner chunk shape; while doubling keeps the shard at or under
    ``target_bytes``, double the multiplier of the dimension with the largest current extent
    among those that still fit whole chunks inside the array; clip to the array shape.
    """
    shard = [max(1, c) for c in chunks]
    if not shard:
        return None
    while True:
        size = math.prod(shard) * itemsize
        candidates = [i for i, (s, n) in enumerate(zip(shard, shape, strict=True)) if s * 2 <= n]
        if not candidates or size * 2 > target_bytes:
            break
        best = max(candidates, key=lambda i: shard[i])
        shard[best] *= 2
    clipped = tuple(min(s, max(n, 1)) for s, n in zip(shard, shape, strict=True))
    # a shard must hold whole chunks: round down to a multiple of the chunk
    result = tuple(max(c, (s // c) * c) for s, c in zip(clipped, chunks, strict=True))
    if result == tuple(chunks):
        return None
    return result
