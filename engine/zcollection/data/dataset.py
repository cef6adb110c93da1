"""The root group of a zcollection tree: schema plus in-memory data."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..schema import DatasetSchema, GroupSchema
from ..schema.paths import split_path
from .group import Group, _as_dict
from .variable import Variable

if TYPE_CHECKING:
    import xarray


def _build_group(schema: GroupSchema, name: str) -> Group:
    return Group(schema, name=name)


class Dataset(Group):
    """A schema plus the in-memory data for one or more partitions."""

    schema: DatasetSchema

    def __init__(
        self,
        schema: DatasetSchema,
        variables: Mapping[str, Variable] | Iterable[Variable] = (),
        groups: Mapping[str, Group] | Iterable[Group] = (),
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(schema, attrs=attrs, name="/", parent=None)
        given_groups = _as_dict(groups, "group")
        if isinstance(variables, Mapping):
            items = list(variables.items())
        else:
            items = [(v.name, v) for v in variables]
        for key, variable in items:
            parts = split_path(key)
            if len(parts) <= 1:
                self.add_variable(variable)
                continue
            node: Group = self
            schema_node: GroupSchema = schema
            for part in parts[:-1]:
                if part not in node.groups:
                    child_schema = schema_node.groups.get(part) or GroupSchema(name=part)
                    if part in given_groups:
                        node.add_group(given_groups.pop(part))
                    else:
                        node.add_group(_build_group(child_schema, part))
                node = node.groups[part]
                schema_node = node.schema
            node.add_variable(variable)
        for name, group in given_groups.items():
            if name in self.groups:
                del self._groups[name]
            self.add_group(group)

    # -- selection --------------------------------------------------------------------------
    def select(self, names: Iterable[str]) -> Dataset:
        """Return a new dataset restricted to the named variables."""
        if isinstance(names, str):
            names = [names]
        names = list(names)
        schema = self.schema.select(names)
        keep = {path.lstrip("/") for path in schema.all_variables()}
        variables = {k: v for k, v in self.all_variables().items() if k in keep}
        return self._rebuild(schema, variables)

    def isel(self, dim: str, index: Any) -> Dataset:
        """Return every variable indexed by ``index`` (slice or integer array) along ``dim``."""
        variables = {k: v.isel(dim, index) for k, v in self.all_variables().items()}
        return self.replace(variables)

    def replace(self, variables: Mapping[str, Variable]) -> Dataset:
        """Return a dataset with the same schema, attributes and the given variables."""
        return self._rebuild(self.schema, variables)

    def _rebuild(self, schema: DatasetSchema, variables: Mapping[str, Variable]) -> Dataset:
        """Return a dataset of ``schema`` holding ``variables``, with this one's attributes."""
        result = Dataset(schema, variables, attrs=self.attrs)
        for path, group in self.walk():
            if group is not self:
                with contextlib.suppress(KeyError):
                    result.get_group(path).attrs.update(group.attrs)
        return result

    def dimension_size(self, dim: str) -> int | None:
        """Return the length of ``dim`` across the tree (None if no variable spans it)."""
        for variable in self.all_variables().values():
            if dim in variable.dimensions and variable.data is not None:
                return variable.sizes[dim]
        return None

    # -- xarray bridge ----------------------------------------------------------------------
    def to_xarray(self, group: str | None = None) -> xarray.Dataset:
        """Convert one group's variables to an xarray Dataset."""
        from .xarray_bridge import to_xarray

        return to_xarray(self, group)

    @classmethod
    def from_xarray(cls, ds: xarray.Dataset) -> Dataset:
        """Build a flat Dataset from an xarray Dataset (no copy of the data)."""
        from .xarray_bridge import from_xarray

        return from_xarray(ds)
