"""``zcollection.collection.merge``: the merge strategies, also importable from here."""

from ..merge import (
    STRATEGIES,
    MergeCallable,
    concat,
    replace,
    resolve,
    time_series,
    upsert,
    upsert_within,
)

__all__ = [
    "STRATEGIES",
    "MergeCallable",
    "concat",
    "replace",
    "resolve",
    "time_series",
    "upsert",
    "upsert_within",
]
