"""Immutable dataset schemas and their fluent builder."""

from .builder import Schema, SchemaBuilder
from .dataset import FORMAT_VERSION, DatasetSchema
from .group import GroupSchema
from .variable import Dimension, VariableRole, VariableSchema

__all__ = [
    "FORMAT_VERSION",
    "DatasetSchema",
    "Dimension",
    "GroupSchema",
    "Schema",
    "SchemaBuilder",
    "VariableRole",
    "VariableSchema",
]
