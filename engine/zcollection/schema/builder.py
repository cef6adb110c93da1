"""The fluent SchemaBuilder and its Schema() shorthand."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..codecs import CodecStack
from ..errors import SchemaError
from .dataset import DatasetSchema
from .group import GroupSchema
from .paths import check_name, split_path
from .variable import Dimension, VariableRole, VariableSchema


class _Node:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dimensions: dict[str, Dimension] = {}
        self.variables: dict[str, VariableSchema] = {}
        self.groups: dict[str, _Node] = {}
        self.attrs: dict[str, Any] = {}

    def freeze(self) -> GroupSchema:
        return GroupSchema(
            name=self.name,
            dimensions=self.dimensions,
            variables=self.variables,
            groups={n: g.freeze() for n, g in self.groups.items()},
            attrs=self.attrs,
        )


class SchemaBuilder:
    """Mutable builder that produces an immutable DatasetSchema."""

    def __init__(self) -> None:
        self._root = _Node("/")

    def _node(self, group: str | None) -> _Node:
        node = self._root
        for part in split_path(group or "/"):
            check_name(part, "group")
            if part in node.variables:
                raise SchemaError(f"{part!r} is already a variable, not a group")
            node = node.groups.setdefault(part, _Node(part))
        return node

    def with_dimension(
        self,
        name: str,
        *,
        size: int | None = None,
        chunks: int | None = None,
        shards: int | None = None,
        group: str | None = None,
    ) -> SchemaBuilder:
        """Register a dimension on the root or a nested group."""
        node = self._node(group)
        if name in node.dimensions:
            raise SchemaError(f"dimension {name!r} declared twice in group {group or '/'!r}")
        node.dimensions[name] = Dimension(name, size=size, chunks=chunks, shards=shards)
        return self

    def with_variable(
        self,
        name: str,
        *,
        dtype: Any,
        dimensions: Iterable[str],
        fill_value: Any | None = None,
        codecs: CodecStack | None = None,
        attrs: dict[str, Any] | None = None,
        role: VariableRole = VariableRole.USER,
        group: str | None = None,
    ) -> SchemaBuilder:
        """Register a variable on the root or a nested group."""
        node = self._node(group)
        if name in node.variables or name in node.groups:
            raise SchemaError(f"variable {name!r} declared twice in group {group or '/'!r}")
        dims = (dimensions,) if isinstance(dimensions, str) else tuple(dimensions)
        node.variables[name] = VariableSchema(
            name=name,
            dtype=dtype,
            dimensions=dims,
            fill_value=fill_value,
            codecs=codecs,  # type: ignore[arg-type]
            attrs=dict(attrs or {}),
            role=role,
        )
        return self

    def with_attribute(self, name: str, value: Any, *, group: str | None = None) -> SchemaBuilder:
        """Register an attribute on the root or a nested group."""
        self._node(group).attrs[name] = value
        return self

    def with_group(self, path: str, *, attrs: dict[str, Any] | None = None) -> SchemaBuilder:
        """Declare a nested group at ``path``, optionally with attributes."""
        if not split_path(path):
            raise SchemaError("with_group needs a non-root path")
        self._node(path).attrs.update(attrs or {})
        return self

    def build(self) -> DatasetSchema:
        """Build and return the immutable DatasetSchema."""
        return DatasetSchema.from_group(self._root.freeze())


def Schema() -> SchemaBuilder:
    """Shorthand for SchemaBuilder."""
    return SchemaBuilder()
