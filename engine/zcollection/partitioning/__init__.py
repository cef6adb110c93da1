"""Partitioning strategies (how rows are bucketed onto disk) and the filter language."""

from .axis import axis_variable
from .base import (
    Partitioning,
    PartitionKey,
    Rows,
    check_schema,
    from_json,
    partition_rows,
    register,
    registered,
    sort_paths,
)
from .date import Date
from .filters import compile_filter, referenced_names
from .sequence import GroupedSequence, Sequence

__all__ = [
    "axis_variable",
    "Date",
    "GroupedSequence",
    "PartitionKey",
    "Partitioning",
    "Rows",
    "Sequence",
    "check_schema",
    "compile_filter",
    "from_json",
    "partition_rows",
    "referenced_names",
    "register",
    "registered",
    "sort_paths",
]
