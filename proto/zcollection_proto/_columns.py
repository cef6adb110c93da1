"""One variable <-> one Arrow column (the field, its metadata and its values)."""

from __future__ import annotations

import json
from typing import Any

import numpy
import pyarrow as pa
from zcollection.errors import SchemaError
from zcollection.schema import VariableSchema
from zcollection.schema.fill import fill_value_to_json
from zcollection.schema.variable import to_jsonable

from ._elements import (
    COMPLEX_DIMENSION,
    as_dtype,
    element_codec,
    from_arrow,
    null_replacement,
    to_arrow,
)

DTYPE_KEY = "zcollection.dtype"
DIMENSIONS_KEY = "zcollection.dimensions"
FILL_VALUE_KEY = "zcollection.fill_value"
ATTRS_KEY = "zcollection.attrs"
ENCODING_KEY = "zcollection.encoding"


def dumps(value: Any) -> str:
    """Return compact JSON text (the form of every JSON metadata value)."""
    return json.dumps(value, separators=(",", ":"))


def element_dims(variable: VariableSchema, axis: str | None) -> tuple[str, ...]:
    """Dimensions of one row of the variable (all of them for an immutable table)."""
    return tuple(d for d in variable.dimensions if d != axis)


def make_field(
    name: str, variable: VariableSchema, axis: str | None, shape: tuple[int, ...]
) -> pa.Field:
    """Return the field of a variable whose rows have ``shape`` (``axis`` None: immutable)."""
    codec = element_codec(variable.dtype)
    dims = list(element_dims(variable, axis))
    if codec.is_complex:
        dims.append(COMPLEX_DIMENSION)
        shape = (*shape, 2)
    if shape:
        arrow_type: pa.DataType = pa.fixed_shape_tensor(
            codec.value_type, list(shape), dim_names=dims
        )
    else:
        arrow_type = codec.value_type
    metadata = {
        DTYPE_KEY: variable.dtype.str,
        DIMENSIONS_KEY: dumps(list(variable.dimensions)),
        FILL_VALUE_KEY: dumps(fill_value_to_json(variable.dtype, variable.fill_value)),
        ATTRS_KEY: dumps(to_jsonable(variable.attrs)),
        ENCODING_KEY: codec.encoding,
    }
    return pa.field(name, arrow_type, nullable=True, metadata=metadata)


def encode_column(
    array: numpy.ndarray[Any, Any], variable: VariableSchema, axis: str | None, name: str
) -> tuple[pa.Field, pa.Array]:
    """Return the field and column of a variable (``axis`` None: one row holding it all)."""
    codec = element_codec(variable.dtype)
    if axis is None:
        array = array[numpy.newaxis, ...]
    else:
        position = variable.dimensions.index(axis)
        if position:
            array = numpy.moveaxis(array, position, 0)
    array = numpy.ascontiguousarray(as_dtype(array, codec.wire))
    rows, shape = int(array.shape[0]), tuple(int(s) for s in array.shape[1:])
    flat = array.reshape(-1)
    if codec.is_complex:
        flat = flat.view(codec.element)
    values = to_arrow(flat, codec)
    field = make_field(name, variable, axis, shape)
    if not isinstance(field.type, pa.BaseExtensionType):
        return field, values
    storage = pa.Array.from_buffers(field.type.storage_type, rows, [None], children=[values])
    return field, pa.ExtensionArray.from_storage(field.type, storage)


def decode_column(
    column: pa.Array, variable: VariableSchema, axis: str | None, name: str
) -> numpy.ndarray[Any, Any]:
    """Return the rows of ``column`` as an array ``(rows, *element dims)`` of the variable."""
    codec = element_codec(variable.dtype)
    rows = len(column)
    column_type = column.type
    invalid_rows = None
    if isinstance(column_type, pa.BaseExtensionType) or pa.types.is_fixed_size_list(column_type):
        if isinstance(column_type, pa.FixedShapeTensorType):
            permutation = column_type.permutation
            if permutation is not None and list(permutation) != sorted(permutation):
                raise SchemaError(f"column {name!r}: permuted tensors are not supported")
            shape = tuple(int(s) for s in column_type.shape)
            storage = column.storage
        elif isinstance(column_type, pa.BaseExtensionType):
            raise SchemaError(f"column {name!r}: unsupported extension type {column_type}")
        else:
            storage = column
            shape = (int(column_type.list_size),)
        size = int(storage.type.list_size)
        if storage.null_count:
            invalid_rows = numpy.asarray(storage.is_null().to_numpy(zero_copy_only=False))
        values = storage.values.slice(storage.offset * size, rows * size)
    else:
        shape = ()
        values = column
    flat, invalid = from_arrow(values, codec, name)
    if codec.is_complex:
        if not shape or shape[-1] != 2:
            raise SchemaError(f"column {name!r}: complex values need a trailing dimension of 2")
        shape = shape[:-1]
        flat = numpy.ascontiguousarray(flat).view(codec.wire)
        if invalid is not None:
            invalid = invalid.reshape(-1, 2).any(axis=1)
    expected = len(element_dims(variable, axis))
    if len(shape) != expected:
        raise SchemaError(
            f"column {name!r}: rows of {len(shape)} dimension(s), variable dimensions "
            f"{variable.dimensions} need {expected}"
        )
    array = as_dtype(flat.reshape((rows, *shape)), variable.dtype)
    if invalid is not None or invalid_rows is not None:
        array = _fill_nulls(array, invalid, invalid_rows, variable, name)
    return array


def _fill_nulls(
    array: numpy.ndarray[Any, Any],
    invalid: numpy.ndarray[Any, Any] | None,
    invalid_rows: numpy.ndarray[Any, Any] | None,
    variable: VariableSchema,
    name: str,
) -> numpy.ndarray[Any, Any]:
    mask = numpy.zeros(array.shape, dtype=bool)
    if invalid is not None:
        mask.reshape(-1)[:] = invalid
    if invalid_rows is not None:
        mask[invalid_rows] = True
    if variable.dtype.kind in "mM" and numpy.isnat(array[mask]).all():
        return array  # NaT sent as null: the data already holds NaT
    replacement = null_replacement(variable.dtype, variable.fill_value, name)
    array = numpy.array(array, copy=True)
    array[mask] = replacement
    return array


def restore_order(array: numpy.ndarray[Any, Any], variable: VariableSchema, axis: str) -> Any:
    position = variable.dimensions.index(axis)
    if position:
        return numpy.ascontiguousarray(numpy.moveaxis(array, 0, position))
    return array
