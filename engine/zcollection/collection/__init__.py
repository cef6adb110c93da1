"""The Collection and its storage layout."""

from ..errors import PartitionExistsError
from ..selection import RowSelection
from . import merge
from .collection import Collection

__all__ = ["Collection", "PartitionExistsError", "RowSelection", "merge"]
