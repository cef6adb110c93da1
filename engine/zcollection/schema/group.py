"""Immutable group schemas: dimensions, variables, attributes and child groups."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import SchemaError
from .paths import check_name, join_path, split_path
from .variable import Dimension, VariableSchema, to_jsonable


@dataclass(frozen=True, eq=True)
class GroupSchema:
    """Immutable description of a (possibly nested) group of variables."""

    name: str = "/"
    dimensions: Mapping[str, Dimension] = field(default_factory=dict)
    variables: Mapping[str, VariableSchema] = field(default_factory=dict)
    groups: Mapping[str, GroupSchema] = field(default_factory=dict)
    attrs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name != "/":
            check_name(self.name, "group")
        object.__setattr__(self, "dimensions", _keyed(self.dimensions, "dimension"))
        object.__setattr__(self, "variables", _keyed(self.variables, "variable"))
        object.__setattr__(self, "groups", _keyed(self.groups, "group"))
        attrs = dict(self.attrs or {})
        try:
            to_jsonable(attrs)
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"group {self.name!r}: attributes must be JSON data") from exc
        object.__setattr__(self, "attrs", attrs)
        clash = set(self.variables) & set(self.groups)
        if clash:
            raise SchemaError(f"names used by both a variable and a group: {sorted(clash)}")

    __hash__ = None  # type: ignore[assignment]

    # -- navigation -------------------------------------------------------------------------
    def get_group(self, path: str) -> GroupSchema:
        """Return the group at ``path`` (absolute or relative).

        Raises:
            KeyError: If the path does not resolve to a known group.
        """
        node = self
        for part in split_path(path):
            if part not in node.groups:
                raise KeyError(f"no group {path!r}")
            node = node.groups[part]
        return node

    def iter_groups(self) -> Iterable[GroupSchema]:
        """Yield all descendant groups depth-first (excluding self)."""
        for child in self.groups.values():
            yield child
            yield from child.iter_groups()

    def walk(self, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], GroupSchema]]:
        """Yield ``(path components, group)`` for self and every descendant, depth-first."""
        yield prefix, self
        for name, child in self.groups.items():
            yield from child.walk((*prefix, name))

    def all_variables(self) -> dict[str, VariableSchema]:
        """Return every variable in the tree keyed by absolute path."""
        result: dict[str, VariableSchema] = {}
        for parts, group in self.walk():
            for name, var in group.variables.items():
                result[join_path((*parts, name))] = var
        return result

    def all_dimensions(self) -> dict[str, Dimension]:
        """Return every dimension declared in the tree (first declaration wins)."""
        result: dict[str, Dimension] = {}
        for _, group in self.walk():
            for name, dim in group.dimensions.items():
                result.setdefault(name, dim)
        return result

    def visible_dimensions(self, path: str) -> dict[str, Dimension]:
        """Return the dimensions visible from the group at ``path`` (own and ancestors)."""
        node = self
        visible = dict(self.dimensions)
        for part in split_path(path):
            node = node.groups[part]
            visible.update(node.dimensions)
        return visible

    # -- copies -----------------------------------------------------------------------------
    def with_group(self, path: str, group: GroupSchema) -> GroupSchema:
        """Return a copy with ``group`` inserted at ``path`` (the parent path, relative)."""
        parts = split_path(path)
        if not parts:
            groups = dict(self.groups)
            groups[group.name] = group
            return replace(self, groups=groups)
        head, rest = parts[0], "/".join(parts[1:])
        child = self.groups.get(head) or GroupSchema(name=head)
        groups = dict(self.groups)
        groups[head] = child.with_group(rest, group)
        return replace(self, groups=groups)

    def map_variables(self, fn: Any) -> GroupSchema:
        """Return a copy with ``fn(variable)`` applied to every variable of the tree."""
        return replace(
            self,
            variables={n: fn(v) for n, v in self.variables.items()},
            groups={n: g.map_variables(fn) for n, g in self.groups.items()},
        )

    # -- JSON -------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Serialize this group (recursively) to a JSON-compatible dict."""
        return {
            "name": self.name,
            "dimensions": [d.to_json() for d in self.dimensions.values()],
            "variables": [v.to_json() for v in self.variables.values()],
            "groups": [g.to_json() for g in self.groups.values()],
            "attrs": to_jsonable(dict(self.attrs)),
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> GroupSchema:
        """Build a group schema from a JSON-compatible dict."""
        if not isinstance(payload, dict):
            raise SchemaError("a group schema must be a JSON object")
        try:
            return cls(
                name=payload.get("name", "/"),
                dimensions=[Dimension.from_json(d) for d in payload.get("dimensions", [])],  # type: ignore[arg-type]
                variables=[VariableSchema.from_json(v) for v in payload.get("variables", [])],  # type: ignore[arg-type]
                groups=[GroupSchema.from_json(g) for g in payload.get("groups", [])],  # type: ignore[arg-type]
                attrs=dict(payload.get("attrs") or {}),
            )
        except (TypeError, AttributeError) as exc:
            raise SchemaError(f"invalid group JSON: {exc}") from exc


def _keyed(items: Any, what: str) -> dict[str, Any]:
    """Accept a mapping or an iterable of named items; return a dict keyed by name."""
    if isinstance(items, Mapping):
        values = list(items.values())
        for key, value in items.items():
            if key != value.name:
                raise SchemaError(f"{what} keyed {key!r} is named {value.name!r}")
    else:
        values = list(items or ())
    result: dict[str, Any] = {}
    for value in values:
        if value.name in result:
            raise SchemaError(f"duplicate {what} {value.name!r}")
        result[value.name] = value
    return result
