"""A named array bound to a VariableSchema."""

from __future__ import annotations

from typing import Any

import numpy

from ..schema import VariableSchema


class Variable:
    """A named array bound to a VariableSchema.

    ``data`` may be a numpy array (eager), a Dask-style lazy array (anything with
    ``compute()``), any array-like, or None (a placeholder).
    """

    __slots__ = ("_data", "schema")

    def __init__(self, schema: VariableSchema, data: Any) -> None:
        if not isinstance(schema, VariableSchema):
            raise TypeError("schema must be a VariableSchema")
        if data is not None and not hasattr(data, "ndim"):
            data = numpy.asarray(data)
        ndim = getattr(data, "ndim", None)
        if ndim is not None and ndim != schema.ndim:
            raise ValueError(
                f"variable {schema.name!r}: data has {ndim} dimension(s), the schema "
                f"declares {schema.ndim} {schema.dimensions}"
            )
        self.schema = schema
        self._data = data

    @property
    def name(self) -> str:
        """Return the variable name."""
        return self.schema.name

    @property
    def data(self) -> Any:
        """Return the underlying array as-is (no materialisation)."""
        return self._data

    @property
    def dimensions(self) -> tuple[str, ...]:
        """Return the dimension names."""
        return self.schema.dimensions

    @property
    def dtype(self) -> numpy.dtype[Any]:
        """Return the numpy dtype."""
        return self.schema.dtype

    @property
    def fill_value(self) -> Any:
        """Return the schema fill value."""
        return self.schema.fill_value

    @property
    def attrs(self) -> dict[str, Any]:
        """Return a fresh copy of the schema attributes."""
        return dict(self.schema.attrs)

    @property
    def ndim(self) -> int:
        """Return the number of dimensions."""
        return self.schema.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        """Return the shape of the underlying data (``()`` for a placeholder)."""
        shape = getattr(self._data, "shape", None)
        return tuple(int(s) for s in shape) if shape is not None else ()

    @property
    def sizes(self) -> dict[str, int]:
        """Return the dimension-name -> length mapping of this variable."""
        return dict(zip(self.dimensions, self.shape, strict=False))

    @property
    def nbytes(self) -> int:
        """Return the uncompressed byte size of the underlying data."""
        if self._data is None:
            return 0
        return int(numpy.prod(self.shape, dtype=numpy.int64)) * self.dtype.itemsize

    @property
    def is_lazy(self) -> bool:
        """Return whether the underlying data isn't a plain numpy.ndarray."""
        return not isinstance(self._data, numpy.ndarray)

    def to_numpy(self) -> numpy.ndarray[Any, Any]:
        """Materialise the data as a numpy array."""
        data = self._data
        if isinstance(data, numpy.ndarray):
            return data
        if hasattr(data, "compute"):
            return numpy.asarray(data.compute())
        return numpy.asarray(data)

    def with_data(self, data: Any) -> Variable:
        """Return a variable with the same schema and new data."""
        return Variable(self.schema, data)

    def isel(self, dim: str, index: Any) -> Variable:
        """Return this variable indexed by ``index`` (a slice or integer array) along ``dim``."""
        if dim not in self.dimensions:
            return self
        axis = self.dimensions.index(dim)
        key = (slice(None),) * axis + (index,)
        return Variable(self.schema, self._data[key])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> numpy.ndarray[Any, Any]:
        array = self.to_numpy()
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        from .repr import variable_repr

        return variable_repr(self)
