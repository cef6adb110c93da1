"""In-memory datasets, groups and variables."""

from .dataset import Dataset
from .group import Group
from .variable import Variable

__all__ = ["Dataset", "Group", "Variable"]
