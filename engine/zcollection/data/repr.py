"""Size-aware, xarray-like text representations."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .group import Group
    from .variable import Variable


def human_size(nbytes: int) -> str:
    """Format a byte count as ``781.25 kB``, ``91.55 MB`` (binary multiples)."""
    value = float(nbytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _kind(data: object) -> str:
    if data is None:
        return "<placeholder>"
    return f"{type(data).__module__.split('.')[0]}.{type(data).__name__}<...>"


def _variable_lines(group: Group) -> list[str]:
    if not group.variables:
        return []
    rows = [
        (f"{v.name} ({', '.join(v.dimensions)})", str(v.dtype), human_size(v.nbytes), _kind(v.data))
        for v in group.variables.values()
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return [f"    {a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows]


def group_repr(group: Group) -> str:
    """Return the multi-line repr of a group or dataset."""
    cls = type(group)
    head = (
        f"<{cls.__module__}.{cls.__name__} {group.long_name()!r}> Size: {human_size(group.nbytes)}"
    )
    dims = ", ".join(f"{k}: {v}" for k, v in group.dimensions.items())
    lines = [head, f"  Dimensions: ({dims})"]
    var_lines = _variable_lines(group)
    if var_lines:
        lines.append("Data variables:")
        lines.extend(var_lines)
    if group.groups:
        lines.append("Groups:")
        width = max(len(n) for n in group.groups)
        for name, child in group.groups.items():
            nvar, ngrp = len(child.variables), len(child.groups)
            lines.append(
                f"    {name:<{width}}  {human_size(child.nbytes):>10}  "
                f"({nvar} variable{'s' if nvar != 1 else ''}, "
                f"{ngrp} subgroup{'s' if ngrp != 1 else ''})"
            )
    if group.attrs:
        lines.append("Attributes:")
        lines.extend(f"    {k}: {v!r}" for k, v in group.attrs.items())
    return "\n".join(lines)


def variable_repr(variable: Variable) -> str:
    """Return the multi-line repr of a variable."""
    dims = ", ".join(f"{d}: {s}" for d, s in zip(variable.dimensions, variable.shape, strict=False))
    lines = [
        f"<zcollection.data.variable.Variable {variable.name!r} ({dims})> "
        f"Size: {human_size(variable.nbytes)}",
        f"  dtype: {variable.dtype}  fill_value: {variable.fill_value!r}",
        f"  data: {_kind(variable.data)}",
    ]
    if variable.schema.attrs:
        lines.append("Attributes:")
        lines.extend(f"    {k}: {v!r}" for k, v in variable.schema.attrs.items())
    return "\n".join(lines)
