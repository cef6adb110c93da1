"""The one mapping between a ``zcollection.Dataset`` and Arrow tables and record batches.

Partitioned variables (those spanning ``axis``) travel as a table with one row per index
along ``axis``:

- a variable ``(axis,)`` is a plain column; a variable with more dimensions is a column of
  the canonical extension type ``arrow.fixed_shape_tensor`` whose shape (and ``dim_names``)
  are its remaining dimensions; a variable whose first dimension is not ``axis`` is
  transposed (``axis`` moved first, the other dimensions keep their order) and restored on
  decode from its recorded dimensions;
- the column of a root variable is named like the variable; a variable of a nested group is
  named ``group/sub/name``.

Immutable variables (those not spanning ``axis``) travel as a one-row table: one tensor
column per variable whose shape is the whole variable (a plain column for a scalar).

Schema metadata: ``zcollection.schema`` (DatasetSchema JSON of the variables of the table,
group attributes included), ``zcollection.axis``, ``zcollection.immutable`` (``"true"`` on
an immutable table) and any extra metadata (the server adds ``zcollection.partitioning``).

Field metadata: ``zcollection.dtype`` (numpy ``dtype.str``), ``zcollection.dimensions``
(JSON list, the variable's own order), ``zcollection.fill_value`` (JSON, as in the schema),
``zcollection.attrs`` (JSON) and ``zcollection.encoding`` (see ``_elements``: ``native``,
``int64``, ``complex``, ``bytes``, ``utf32le``, ``raw``).

Every dtype the engine stores round-trips bit for bit; decoded arrays are owned by numpy
(writable, C-contiguous).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy
import pyarrow as pa
from zcollection.data import Dataset, Group, Variable
from zcollection.errors import SchemaError
from zcollection.schema import DatasetSchema, VariableSchema
from zcollection.schema.variable import to_jsonable

from ._columns import (
    ATTRS_KEY,
    DIMENSIONS_KEY,
    DTYPE_KEY,
    ENCODING_KEY,
    FILL_VALUE_KEY,
    decode_column,
    dumps,
    element_dims,
    encode_column,
    make_field,
    restore_order,
)
from ._elements import as_dtype

__all__ = [
    "ATTRS_KEY",
    "AXIS_KEY",
    "DEFAULT_MAX_BYTES",
    "DIMENSIONS_KEY",
    "DTYPE_KEY",
    "ENCODING_KEY",
    "FILL_VALUE_KEY",
    "IMMUTABLE_KEY",
    "PARTITIONING_KEY",
    "SCHEMA_KEY",
    "RowAssembler",
    "arrow_schema",
    "batches_to_dataset",
    "dataset_to_batches",
    "dataset_to_table",
    "immutable_arrow_schema",
    "immutable_from_table",
    "immutable_to_table",
    "split_batch",
    "table_to_dataset",
]

#: Default byte cap of a record batch.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024

SCHEMA_KEY = "zcollection.schema"
AXIS_KEY = "zcollection.axis"
PARTITIONING_KEY = "zcollection.partitioning"
IMMUTABLE_KEY = "zcollection.immutable"

_RESERVED = frozenset({SCHEMA_KEY, AXIS_KEY, IMMUTABLE_KEY})


# -- schemas ---------------------------------------------------------------------------------
def _column_name(path: str) -> str:
    return path.lstrip("/")


def _group_path(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def _is_partitioned(variable: VariableSchema, axis: str) -> bool:
    return axis in variable.dimensions


def _schema_metadata(
    schema: DatasetSchema,
    axis: str,
    immutable: bool,
    extra: Mapping[str, str | bytes] | None,
    dataset: Dataset | None = None,
) -> dict[str | bytes, str | bytes]:
    payload = schema.to_json()
    if dataset is not None:
        _patch_attrs(payload, dataset)
    metadata: dict[str | bytes, str | bytes] = {SCHEMA_KEY: dumps(payload), AXIS_KEY: axis}
    if immutable:
        metadata[IMMUTABLE_KEY] = "true"
    for key, value in (extra or {}).items():
        text = key.decode() if isinstance(key, bytes) else key
        if text in _RESERVED:
            raise ValueError(f"extra metadata cannot override {text!r}")
        metadata[key] = value
    return metadata


def _patch_attrs(payload: dict[str, Any], group: Group | None) -> None:
    """Replace the attributes of the schema JSON by the live attributes of the dataset."""
    if group is None:
        return
    payload["attrs"] = to_jsonable(dict(group.attrs))
    for child in payload.get("groups", []):
        _patch_attrs(child, group.groups.get(child["name"]))


def _declared_shape(
    schema: DatasetSchema, path: str, variable: VariableSchema, axis: str | None
) -> tuple[int, ...]:
    visible = schema.visible_dimensions(_group_path(path))
    shape = []
    for dim in element_dims(variable, axis):
        size = visible[dim].size if dim in visible else None
        if size is None:
            raise SchemaError(
                f"variable {path!r}: dimension {dim!r} has no declared size; an Arrow schema "
                "needs the size of every dimension other than the axis"
            )
        shape.append(size)
    return tuple(shape)


def _schema_of(
    dataset_schema: DatasetSchema,
    axis: str,
    immutable: bool,
    extra_metadata: Mapping[str, str | bytes] | None,
) -> pa.Schema:
    served = [
        path
        for path, var in dataset_schema.all_variables().items()
        if _is_partitioned(var, axis) != immutable
    ]
    selected = dataset_schema.select(served)
    fields = []
    for path in served:
        var = selected.all_variables()[path]
        row_axis = None if immutable else axis
        shape = _declared_shape(selected, path, var, row_axis)
        fields.append(make_field(_column_name(path), var, row_axis, shape))
    return pa.schema(fields, metadata=_schema_metadata(selected, axis, immutable, extra_metadata))


def arrow_schema(
    dataset_schema: DatasetSchema,
    *,
    axis: str,
    extra_metadata: Mapping[str, str | bytes] | None = None,
) -> pa.Schema:
    """Return the Arrow schema of the partitioned variables of ``dataset_schema``.

    It equals the schema of the tables :func:`dataset_to_table` produces for datasets of
    this schema, without reading any data.

    Raises:
        SchemaError: If a dimension other than ``axis`` has no declared size.
    """
    return _schema_of(dataset_schema, axis, False, extra_metadata)


def immutable_arrow_schema(
    dataset_schema: DatasetSchema,
    *,
    axis: str,
    extra_metadata: Mapping[str, str | bytes] | None = None,
) -> pa.Schema:
    """Return the Arrow schema of the immutable variables (one-row table) of the schema."""
    return _schema_of(dataset_schema, axis, True, extra_metadata)


# -- encoding --------------------------------------------------------------------------------
def _variable_array(variable: Variable, schema: VariableSchema) -> numpy.ndarray[Any, Any]:
    if variable.data is None:
        raise SchemaError(f"variable {schema.name!r} holds no data")
    array = numpy.asarray(variable.to_numpy())
    if array.ndim != schema.ndim:
        raise SchemaError(
            f"variable {schema.name!r}: {array.ndim} dimension(s), the schema declares "
            f"{schema.dimensions}"
        )
    return as_dtype(array, schema.dtype)


def _encode_dataset(
    dataset: Dataset, axis: str, immutable: bool, extra: Mapping[str, str | bytes] | None
) -> pa.RecordBatch:
    present = {"/" + key: var for key, var in dataset.all_variables().items()}
    served = [
        path
        for path, var in dataset.schema.all_variables().items()
        if path in present and _is_partitioned(var, axis) != immutable
    ]
    unknown = sorted(set(present) - set(dataset.schema.all_variables()))
    if unknown:
        raise SchemaError(f"variables {unknown} are not in the dataset's schema")
    selected = dataset.schema.select(served)
    fields, columns = [], []
    rows: int | None = None
    declared = selected.all_variables()
    for path in served:
        variable = declared[path]
        field, column = encode_column(
            _variable_array(present[path], variable),
            variable,
            None if immutable else axis,
            _column_name(path),
        )
        if rows is not None and len(column) != rows:
            raise SchemaError(
                f"variable {path!r} has {len(column)} rows along {axis!r}, others have {rows}"
            )
        rows = len(column)
        fields.append(field)
        columns.append(column)
    schema = pa.schema(fields, metadata=_schema_metadata(selected, axis, immutable, extra, dataset))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def dataset_to_table(
    ds: Dataset, *, axis: str, extra_metadata: Mapping[str, str | bytes] | None = None
) -> pa.Table:
    """Return the partitioned variables of ``ds`` as a table, one row per index along ``axis``.

    Raises:
        SchemaError: If variables disagree on the length of ``axis`` or hold no data.
    """
    return pa.Table.from_batches([_encode_dataset(ds, axis, False, extra_metadata)])


def dataset_to_batches(
    ds: Dataset,
    *,
    axis: str,
    max_bytes: int = DEFAULT_MAX_BYTES,
    extra_metadata: Mapping[str, str | bytes] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the partitioned variables of ``ds`` as record batches of at most ``max_bytes``.

    The batches are zero-copy slices of one encoding of the dataset; a batch holds at least
    one row, even when that row alone is larger than ``max_bytes``. An empty dataset yields
    one empty batch.
    """
    return split_batch(_encode_dataset(ds, axis, False, extra_metadata), max_bytes=max_bytes)


def _bytes_per_row(arrow_type: pa.DataType) -> float:
    """Upper bound of the bytes one row of ``arrow_type`` uses, validity bitmap included."""
    if isinstance(arrow_type, pa.BaseExtensionType):
        arrow_type = arrow_type.storage_type
    count = 1
    while pa.types.is_fixed_size_list(arrow_type):
        count *= arrow_type.list_size
        arrow_type = arrow_type.value_type
    if pa.types.is_boolean(arrow_type):
        # Bit-packed values and validity: one byte per row covers the rounding of bitmaps.
        return count / 8 + 1
    try:
        width = arrow_type.bit_width / 8
    except ValueError:  # variable-width data: no bound known in advance
        width = 16
    return count * width + 1


def split_batch(
    batch: pa.RecordBatch, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> Iterator[pa.RecordBatch]:
    """Yield zero-copy slices of ``batch`` of at most ``max_bytes`` (at least one row each).

    Raises:
        ValueError: If ``max_bytes`` is not positive.
    """
    if max_bytes <= 0:
        raise ValueError(f"max_bytes must be positive, not {max_bytes}")
    return _slices(batch, max_bytes)


def _slices(batch: pa.RecordBatch, max_bytes: int) -> Iterator[pa.RecordBatch]:
    rows = batch.num_rows
    if rows == 0:
        yield batch
        return
    per_row = math.ceil(sum(_bytes_per_row(f.type) for f in batch.schema)) or 1
    step = max(1, max_bytes // per_row)
    if step >= rows:
        yield batch
        return
    for start in range(0, rows, step):
        yield batch.slice(start, step)


def immutable_to_table(
    ds: Dataset, *, axis: str, extra_metadata: Mapping[str, str | bytes] | None = None
) -> pa.Table:
    """Return the immutable variables of ``ds`` (not spanning ``axis``) as a one-row table."""
    return pa.Table.from_batches([_encode_dataset(ds, axis, True, extra_metadata)])


# -- decoding --------------------------------------------------------------------------------
def _read_metadata(
    schema: pa.Schema, dataset_schema: DatasetSchema | None, axis: str | None
) -> tuple[DatasetSchema, str | None, bool]:
    metadata = schema.metadata or {}
    if dataset_schema is None:
        raw = metadata.get(SCHEMA_KEY.encode())
        if raw is None:
            raise SchemaError(
                f"the Arrow schema carries no {SCHEMA_KEY!r} metadata; pass dataset_schema"
            )
        try:
            dataset_schema = DatasetSchema.from_json(json.loads(raw))
        except ValueError as exc:
            if isinstance(exc, SchemaError):
                raise
            raise SchemaError(f"invalid {SCHEMA_KEY!r} metadata: {exc}") from exc
    if axis is None and AXIS_KEY.encode() in metadata:
        axis = metadata[AXIS_KEY.encode()].decode()
    immutable = metadata.get(IMMUTABLE_KEY.encode()) == b"true"
    return dataset_schema, axis, immutable


def _variables_of(
    names: list[str], dataset_schema: DatasetSchema, axis: str | None
) -> dict[str, VariableSchema]:
    known = dataset_schema.all_variables()
    result = {}
    for name in names:
        variable = known.get("/" + name)
        if variable is None:
            raise SchemaError(f"column {name!r} is not a variable of the schema")
        if axis is not None and not _is_partitioned(variable, axis):
            raise SchemaError(f"column {name!r}: variable does not span the axis {axis!r}")
        result[name] = variable
    return result


def _build(
    dataset_schema: DatasetSchema,
    variables: dict[str, VariableSchema],
    arrays: dict[str, numpy.ndarray[Any, Any]],
) -> Dataset:
    selected = dataset_schema.select(list(variables))
    final = selected.all_variables()
    return Dataset(
        selected, {name: Variable(final["/" + name], arrays[name]) for name in variables}
    )


def batches_to_dataset(
    schema: pa.Schema,
    batches: Iterable[pa.RecordBatch | pa.Table],
    *,
    dataset_schema: DatasetSchema | None = None,
    axis: str | None = None,
    copy: bool = True,
) -> Dataset:
    """Return the dataset of record batches of ``schema`` (partitioned or immutable).

    ``dataset_schema`` and ``axis`` default to the schema's metadata; give them to read
    batches without zcollection metadata (for example sent by another Arrow client).
    With ``copy=False`` the arrays decoded from a single batch may share its memory
    (read-only) instead of being copied.

    Raises:
        SchemaError: If a column is not a variable of the schema, or cannot be converted.
    """
    dataset_schema, axis, immutable = _read_metadata(schema, dataset_schema, axis)
    if immutable:
        return immutable_from_table(
            pa.Table.from_batches(list(_record_batches(batches)), schema=schema),
            dataset_schema=dataset_schema,
        )
    if axis is None:
        raise SchemaError(f"the Arrow schema carries no {AXIS_KEY!r} metadata; pass axis")
    names = list(schema.names)
    variables = _variables_of(names, dataset_schema, axis)
    chunks: dict[str, list[numpy.ndarray[Any, Any]]] = {name: [] for name in names}
    for batch in _record_batches(batches):
        if batch.schema.names != names:
            raise SchemaError(f"record batch columns {batch.schema.names} differ from {names}")
        for index, name in enumerate(names):
            chunks[name].append(decode_column(batch.column(index), variables[name], axis, name))
    arrays = {}
    for index, name in enumerate(names):
        parts = chunks[name]
        if not parts:
            # no rows: the column's type is checked all the same
            empty = schema.empty_table().column(index).combine_chunks()
            array = decode_column(empty, variables[name], axis, name)
        elif len(parts) == 1:
            array = numpy.array(parts[0], copy=True, order="C") if copy else parts[0]
        else:
            array = numpy.concatenate(parts, axis=0)
        arrays[name] = restore_order(array, variables[name], axis)
    return _build(dataset_schema, variables, arrays)


class RowAssembler:
    """Decodes the record batches of consecutive parts (a query's partitions) straight into
    preallocated arrays: one copy of the data, made as the batches arrive.

    ``counts`` are the rows announced for each part, in order (part ``i`` fills the rows after
    those of the parts before it). Each part is filled by its own :class:`PartRows` (parts may
    be filled by different threads at the same time); a part that delivers other rows than it
    announced, or rows of another shape or dtype, is kept aside and merged in order by
    :meth:`dataset` (one more copy, of that case only).

    Raises:
        SchemaError: If ``schema`` is immutable or its columns are not partitioned variables.
    """

    def __init__(
        self,
        schema: pa.Schema,
        counts: list[int],
        *,
        dataset_schema: DatasetSchema | None = None,
        axis: str | None = None,
    ) -> None:
        dataset_schema, axis, immutable = _read_metadata(schema, dataset_schema, axis)
        if immutable or axis is None:
            raise SchemaError("rows are assembled from the partitioned variables' batches only")
        self.names = list(schema.names)
        self.axis = axis
        self._dataset_schema = dataset_schema
        self.variables = _variables_of(self.names, dataset_schema, axis)
        self.starts = [0]
        for count in counts:
            if count < 0:
                raise ValueError(f"row counts must be known, not {count}")
            self.starts.append(self.starts[-1] + count)
        total = self.starts[-1]
        empty = schema.empty_table()
        self.arrays: dict[str, numpy.ndarray[Any, Any]] = {}
        for index, name in enumerate(self.names):
            kind = decode_column(
                empty.column(index).combine_chunks(), self.variables[name], axis, name
            )
            self.arrays[name] = numpy.empty((total, *kind.shape[1:]), dtype=kind.dtype)
        #: Whether each part delivered all its batches.
        self._finished = [False for _ in counts]
        #: The pieces of each part that did not deliver exactly its rows (None: it did).
        self._aside: list[list[dict[str, numpy.ndarray[Any, Any]]] | None] = [None for _ in counts]

    def part(self, index: int) -> PartRows:
        """Return a filler of part ``index`` (a new one for each attempt at reading it)."""
        return PartRows(self, index)

    def dataset(self) -> Dataset:
        """Return the dataset of every part's rows, in order.

        Raises:
            ValueError: If a part was never finished.
            SchemaError: If the parts kept aside cannot be merged.
        """
        if not all(self._finished):
            raise ValueError("every part must be finished before the dataset is built")
        arrays = self.arrays
        if any(part is not None for part in self._aside):
            arrays = {}
            for name in self.names:
                pieces: list[numpy.ndarray[Any, Any]] = []
                for index, part in enumerate(self._aside):
                    start, stop = self.starts[index], self.starts[index + 1]
                    if part is None:
                        pieces.append(self.arrays[name][start:stop])
                    else:
                        pieces.extend(piece[name] for piece in part)
                try:
                    arrays[name] = numpy.concatenate(pieces, axis=0)
                except ValueError as exc:
                    raise SchemaError(f"column {name!r}: parts do not match: {exc}") from exc
        ordered = {
            name: restore_order(arrays[name], self.variables[name], self.axis)
            for name in self.names
        }
        return _build(self._dataset_schema, self.variables, ordered)


class PartRows:
    """Fills one part of a :class:`RowAssembler` with its record batches, in order."""

    def __init__(self, owner: RowAssembler, index: int) -> None:
        self._owner = owner
        self._index = index
        self._start = owner.starts[index]
        self._stop = owner.starts[index + 1]
        self._filled = 0
        self._aside: list[dict[str, numpy.ndarray[Any, Any]]] | None = None

    def add(self, batch: pa.RecordBatch) -> None:
        """Decode ``batch`` into the part's rows (or aside, when it does not fit).

        Raises:
            SchemaError: If a column cannot be decoded as its variable.
        """
        owner = self._owner
        if batch.schema.names != owner.names:
            raise SchemaError(
                f"record batch columns {batch.schema.names} differ from {owner.names}"
            )
        decoded = {
            name: decode_column(batch.column(index), owner.variables[name], owner.axis, name)
            for index, name in enumerate(owner.names)
        }
        rows = batch.num_rows
        position = self._start + self._filled
        fits = (
            self._aside is None
            and position + rows <= self._stop
            and all(
                part.shape[1:] == owner.arrays[name].shape[1:]
                and part.dtype == owner.arrays[name].dtype
                for name, part in decoded.items()
            )
        )
        if fits:
            for name, part in decoded.items():
                owner.arrays[name][position : position + rows] = part
            self._filled += rows
            return
        if self._aside is None:  # from now on every batch of the part goes aside, in order
            self._aside = [
                {name: array[self._start : position] for name, array in owner.arrays.items()}
            ]
        self._aside.append(decoded)

    def finish(self) -> None:
        """Record that the part delivered all its batches."""
        aside = self._aside
        if aside is None and self._filled != self._stop - self._start:  # fewer rows
            aside = [
                {
                    name: array[self._start : self._start + self._filled]
                    for name, array in self._owner.arrays.items()
                }
            ]
        self._owner._aside[self._index] = aside
        self._owner._finished[self._index] = True


def _record_batches(items: Iterable[pa.RecordBatch | pa.Table]) -> Iterator[pa.RecordBatch]:
    for item in items:
        if isinstance(item, pa.Table):
            yield from item.to_batches()
        else:
            yield item


def table_to_dataset(
    table: pa.Table, *, dataset_schema: DatasetSchema | None = None, axis: str | None = None
) -> Dataset:
    """Return the dataset of a table made by :func:`dataset_to_table` (or the immutable one).

    Raises:
        SchemaError: If a column is not a variable of the schema, or cannot be converted.
    """
    return batches_to_dataset(
        table.schema, table.to_batches(), dataset_schema=dataset_schema, axis=axis
    )


def immutable_from_table(
    table: pa.Table, *, dataset_schema: DatasetSchema | None = None
) -> Dataset:
    """Return the dataset of the immutable variables of a one-row table.

    Raises:
        SchemaError: If the table does not hold exactly one row.
    """
    dataset_schema, _, _ = _read_metadata(table.schema, dataset_schema, None)
    names = list(table.schema.names)
    variables = _variables_of(names, dataset_schema, None)
    if names and table.num_rows != 1:
        raise SchemaError(f"an immutable table has one row, not {table.num_rows}")
    arrays = {}
    for name in names:
        column = table.column(name).combine_chunks()
        arrays[name] = numpy.array(
            decode_column(column, variables[name], None, name)[0, ...], copy=True
        )
    return _build(dataset_schema, variables, arrays)
