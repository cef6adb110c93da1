"""The Collection and its storage layout."""

from ..errors import PartitionExistsError
from . import merge
from .collection import Collection
from ..selection import RowSelection

__all__ = ["Collection", "PartitionExistsError", "RowSelection", "merge"]
