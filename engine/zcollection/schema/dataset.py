"""The root schema of a dataset: format version, selection and partition-axis tagging."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..errors import FormatVersionError, SchemaError
from .group import GroupSchema
from .paths import join_path, split_path
from .variable import VariableSchema

#: The newest schema format this library reads and writes.
FORMAT_VERSION = 1


@dataclass(frozen=True, eq=True)
class DatasetSchema(GroupSchema):
    """Immutable description of a collection's dataset."""

    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", "/")
        super().__post_init__()
        self._check_dimensions()

    def _check_dimensions(self) -> None:
        for parts, group in self.walk():
            visible = self.visible_dimensions(join_path(parts))
            for var in group.variables.values():
                for dim in var.dimensions:
                    if dim not in visible:
                        raise SchemaError(
                            f"variable {join_path((*parts, var.name))!r} uses dimension "
                            f"{dim!r}, declared neither on its group nor on an ancestor"
                        )

    @classmethod
    def from_group(cls, group: GroupSchema, format_version: int = FORMAT_VERSION) -> DatasetSchema:
        """Promote a root GroupSchema to a DatasetSchema."""
        return cls(
            dimensions=group.dimensions,
            variables=group.variables,
            groups=group.groups,
            attrs=group.attrs,
            format_version=format_version,
        )

    @property
    def dim_sizes(self) -> dict[str, int | None]:
        """Return a mapping of dimension name to declared size (root only)."""
        return {name: dim.size for name, dim in self.dimensions.items()}

    @property
    def dim_chunks(self) -> dict[str, int | None]:
        """Return a mapping of dimension name to declared chunk size (whole tree)."""
        return {name: dim.chunks for name, dim in self.all_dimensions().items()}

    def variables_by_role(self, *, immutable: bool | None = None) -> tuple[VariableSchema, ...]:
        """Return root-group variables, optionally filtered by ``immutable``."""
        return tuple(
            v for v in self.variables.values() if immutable is None or v.immutable == immutable
        )

    def all_variables_by_role(self, *, immutable: bool | None = None) -> dict[str, VariableSchema]:
        """Return all variables across the tree (keyed by absolute path)."""
        return {
            path: v
            for path, v in self.all_variables().items()
            if immutable is None or v.immutable == immutable
        }

    def resolve(self, name: str) -> str:
        """Return the absolute path of a variable given by short name or path.

        Raises:
            SchemaError: If ``name`` is not a known variable.
        """
        everything = self.all_variables()
        path = name if name.startswith("/") else "/" + name
        if path in everything:
            return path
        raise SchemaError(f"unknown variable {name!r}; known: {', '.join(sorted(everything))}")

    def variable_paths(self, names: Iterable[str] | None = None) -> list[str]:
        """Return the absolute paths of ``names`` (every variable when None), in schema order.

        Raises:
            SchemaError: If a name is not a known variable.
        """
        everything = list(self.all_variables())
        if names is None:
            return everything
        if isinstance(names, str):
            names = [names]
        wanted = {self.resolve(n) for n in names}
        return [p for p in everything if p in wanted]

    def select(self, names: Iterable[str]) -> DatasetSchema:
        """Return a new schema restricted to the named variables (empty groups pruned)."""
        if isinstance(names, str):
            names = [names]
        wanted = {self.resolve(n) for n in names}

        def prune(group: GroupSchema, parts: tuple[str, ...]) -> GroupSchema | None:
            variables = {
                n: v for n, v in group.variables.items() if join_path((*parts, n)) in wanted
            }
            groups = {}
            for n, child in group.groups.items():
                kept = prune(child, (*parts, n))
                if kept is not None:
                    groups[n] = kept
            if parts and not variables and not groups:
                return None
            return replace(group, variables=variables, groups=groups)

        pruned = prune(self, ())
        assert pruned is not None
        return replace(self, variables=pruned.variables, groups=pruned.groups)

    def with_partition_axis(self, axis: str) -> DatasetSchema:
        """Bind the partition axis and tag each variable immutable iff it does not span it.

        Raises:
            SchemaError: If ``axis`` is not a root dimension, or if a variable references an
                unbounded dimension other than ``axis``.
        """
        if axis not in self.dimensions:
            raise SchemaError(f"partition axis {axis!r} is not a root dimension")

        def tag(
            group: GroupSchema, parts: tuple[str, ...], sizes: dict[str, int | None]
        ) -> GroupSchema:
            # a variable sees the dimensions of its own group and of its ancestors, the
            # nearest declaration winning (sibling groups may declare the same name)
            sizes = {**sizes, **{n: d.size for n, d in group.dimensions.items()}}
            variables = {}
            for name, var in group.variables.items():
                unbounded = [d for d in var.dimensions if d != axis and sizes.get(d) is None]
                if unbounded:
                    raise SchemaError(
                        f"variable {join_path((*parts, name))!r} spans unbounded dimension(s) "
                        f"{unbounded} other than the partition axis {axis!r}; give them a size "
                        "or store them in another collection"
                    )
                variables[name] = var.with_immutable(axis not in var.dimensions)
            groups = {n: tag(g, (*parts, n), sizes) for n, g in group.groups.items()}
            return replace(group, variables=variables, groups=groups)

        tagged = tag(self, (), {})
        assert isinstance(tagged, DatasetSchema)
        return tagged

    def to_json(self) -> dict[str, Any]:
        """Serialize the schema (root + nested groups) to a JSON dict."""
        payload = super().to_json()
        payload["name"] = "/"
        payload["format_version"] = self.format_version
        return payload

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> DatasetSchema:
        """Build a schema from a JSON-compatible dict, upgrading older formats."""
        if not isinstance(payload, dict):
            raise SchemaError("a dataset schema must be a JSON object")
        version = payload.get("format_version", 1)
        if not isinstance(version, int) or version < 1:
            raise SchemaError(f"invalid schema format_version {version!r}")
        if version > FORMAT_VERSION:
            raise FormatVersionError(
                f"schema format_version {version} is newer than supported ({FORMAT_VERSION}); "
                "upgrade zcollection"
            )
        payload = _upgrade(dict(payload), version)
        return cls.from_group(GroupSchema.from_json(payload), FORMAT_VERSION)


def _upgrade(payload: dict[str, Any], version: int) -> dict[str, Any]:
    """Bring a schema payload of an older format up to FORMAT_VERSION (one step per version)."""
    # format_version 1 is the first; future versions add their steps here.
    del version
    return payload


def group_path_of(path: str) -> tuple[tuple[str, ...], str]:
    """Split an absolute variable path into (group components, short name)."""
    parts = split_path(path)
    if not parts:
        raise SchemaError(f"invalid variable path {path!r}")
    return parts[:-1], parts[-1]
