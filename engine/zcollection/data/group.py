"""A named container of variables, attributes, dimensions and child groups."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..schema import Dimension, GroupSchema
from ..schema.paths import split_path
from .variable import Variable


def _as_dict(items: Any, what: str) -> dict[str, Any]:
    if isinstance(items, Mapping):
        return dict(items)
    result: dict[str, Any] = {}
    for item in items or ():
        if item.name in result:
            raise ValueError(f"duplicate {what} {item.name!r}")
        result[item.name] = item
    return result


class Group:
    """A named container of variables, attributes, dimensions, and child groups."""

    def __init__(
        self,
        schema: GroupSchema,
        variables: Mapping[str, Variable] | Iterable[Variable] = (),
        groups: Mapping[str, Group] | Iterable[Group] = (),
        attrs: Mapping[str, Any] | None = None,
        *,
        name: str = "/",
        parent: Group | None = None,
    ) -> None:
        self.schema = schema
        self.name = name
        self.parent = parent
        self._attrs: dict[str, Any] = dict(schema.attrs if attrs is None else attrs)
        self._variables: dict[str, Variable] = {}
        self._groups: dict[str, Group] = {}
        self._sizes: dict[str, int] = {}
        for variable in _as_dict(variables, "variable").values():
            self.add_variable(variable)
        for group in _as_dict(groups, "group").values():
            self.add_group(group)

    # -- structure --------------------------------------------------------------------------
    def add_variable(self, variable: Variable) -> None:
        """Register ``variable`` on this group.

        Raises:
            ValueError: If a variable with the same name exists, or if its shape disagrees
                with sizes already established by other variables on this group.
        """
        if variable.name in self._variables:
            raise ValueError(f"variable {variable.name!r} already exists in {self.long_name()!r}")
        if variable.data is not None:
            for dim, size in variable.sizes.items():
                known = self._sizes.get(dim)
                if known is not None and known != size:
                    raise ValueError(
                        f"variable {variable.name!r} has {dim}={size}, but other variables of "
                        f"{self.long_name()!r} have {dim}={known}"
                    )
            for dim, size in variable.sizes.items():
                self._sizes.setdefault(dim, size)
        self._variables[variable.name] = variable

    def add_group(self, group: Group) -> Group:
        """Attach ``group`` as a child of this group.

        Raises:
            ValueError: If a child with the same name already exists.
        """
        if group.name in self._groups:
            raise ValueError(f"group {group.name!r} already exists in {self.long_name()!r}")
        group.parent = self
        self._groups[group.name] = group
        return group

    @property
    def variables(self) -> Mapping[str, Variable]:
        """Return this group's own variables (no recursion)."""
        return self._variables

    @property
    def groups(self) -> Mapping[str, Group]:
        """Return this group's direct child groups (no recursion)."""
        return self._groups

    @property
    def attrs(self) -> dict[str, Any]:
        """Return this group's attributes mapping (live, not a copy)."""
        return self._attrs

    def update_attributes(self, **attributes: Any) -> None:
        """Merge ``attributes`` into this group's attrs (additive)."""
        self._attrs.update(attributes)

    @property
    def dimensions(self) -> dict[str, int]:
        """Return the dimension-name -> size mapping of this group's own variables."""
        return dict(self._sizes)

    def is_root(self) -> bool:
        """Return True if this is the root group (no parent)."""
        return self.parent is None

    def long_name(self) -> str:
        """Return the absolute path of this group (e.g. ``"/data_01/ku"``)."""
        if self.parent is None:
            return "/"
        parent = self.parent.long_name()
        return f"{parent.rstrip('/')}/{self.name}"

    # -- navigation -------------------------------------------------------------------------
    def iter_groups(self) -> Iterator[Group]:
        """Yield every descendant group, depth-first, excluding self."""
        for child in self._groups.values():
            yield child
            yield from child.iter_groups()

    def walk(self) -> Iterator[tuple[str, Group]]:
        """Yield ``(absolute_path, group)`` for self and every descendant."""
        yield self.long_name(), self
        for child in self.iter_groups():
            yield child.long_name(), child

    def find_dimension(self, name: str) -> Dimension | None:
        """Search for a declared dimension by name, walking up the tree."""
        node: Group | None = self
        while node is not None:
            if name in node.schema.dimensions:
                return node.schema.dimensions[name]
            node = node.parent
        return None

    def find_group(self, name: str) -> Group | None:
        """Search for a child group by short name in this subtree (depth-first)."""
        for group in self.iter_groups():
            if group.name == name:
                return group
        return None

    def find_variable(self, name: str) -> Variable | None:
        """Search for a variable by short name in this group and its descendants."""
        if name in self._variables:
            return self._variables[name]
        for child in self._groups.values():
            found = child.find_variable(name)
            if found is not None:
                return found
        return None

    def _start(self, path: str) -> Group:
        node = self
        if path.startswith("/"):
            while node.parent is not None:
                node = node.parent
        return node

    def get_group(self, path: str) -> Group:
        """Return the group at ``path`` (absolute or relative).

        Raises:
            KeyError: If the path does not resolve to a known group.
        """
        node = self._start(path)
        for part in split_path(path):
            if part not in node._groups:
                raise KeyError(f"no group {path!r}")
            node = node._groups[part]
        return node

    def get_variable(self, path: str) -> Variable:
        """Return the variable at ``path`` (absolute or relative).

        Raises:
            KeyError: If the path does not resolve to a known variable.
        """
        parts = split_path(path)
        if not parts:
            raise KeyError(f"no variable {path!r}")
        try:
            group = self._start(path).get_group("/".join(parts[:-1])) if len(parts) > 1 else None
        except KeyError:
            raise KeyError(f"no variable {path!r}") from None
        node = group if group is not None else self._start(path)
        if parts[-1] not in node._variables:
            raise KeyError(f"no variable {path!r}")
        return node._variables[parts[-1]]

    def __getitem__(self, path: str) -> Variable:
        return self.get_variable(path)

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        try:
            self.get_variable(path)
        except KeyError:
            return False
        return True

    def all_variables(self) -> dict[str, Variable]:
        """Return every variable in the tree, root ones by short name, others ``grp/sub/var``."""
        result: dict[str, Variable] = {}
        base = self.long_name().rstrip("/")
        for path, group in self.walk():
            rel = path[len(base) :].strip("/")
            for name, var in group._variables.items():
                result[f"{rel}/{name}" if rel else name] = var
        return result

    @property
    def nbytes(self) -> int:
        """Return the uncompressed byte size of the tree rooted here."""
        return sum(v.nbytes for v in self._variables.values()) + sum(
            g.nbytes for g in self._groups.values()
        )

    @property
    def is_lazy(self) -> bool:
        """Return whether any variable in the tree wraps lazy data."""
        return any(v.is_lazy for v in self._variables.values()) or any(
            g.is_lazy for g in self._groups.values()
        )

    def __repr__(self) -> str:
        from .repr import group_repr

        return group_repr(self)
