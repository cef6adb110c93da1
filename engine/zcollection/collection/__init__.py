"""The Collection and its storage layout."""

from ..errors import PartitionExistsError
from . import merge
from .collection import Collection

__all__ = ["Collection", "PartitionExistsError", "merge"]
