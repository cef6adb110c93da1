"""How one numpy element type travels in Arrow (the ``zcollection.encoding`` of a field).

========  ===========================================  ==========================================
encoding  numpy dtypes                                 Arrow element type
========  ===========================================  ==========================================
native    bool, int8..int64, uint8..uint64,            bool, int*, uint*, halffloat, float,
          float16/32/64, datetime64 / timedelta64      double, timestamp[unit] / duration[unit]
          in s, ms, us or ns                           (no time zone)
int64     datetime64 / timedelta64 of any other unit   int64: the count of the unit named by
          (Y, M, W, D, h, m, ps, fs, as, or a          ``zcollection.dtype``
          multiple such as 15s)
complex   complex64 / complex128                       float / double, with one more trailing
                                                       tensor dimension of size 2 named
                                                       ``complex``: [real, imaginary]
bytes     fixed-width bytes ``|S n``                   fixed_size_binary[n]: the raw numpy
                                                       buffer, NUL padding included
utf32le   fixed-width unicode ``<U n``                 fixed_size_binary[4 n]: the raw UTF-32LE
                                                       (UCS4) numpy buffer, NUL padding included
raw       anything else (long double, ...)             fixed_size_binary[itemsize]: the raw
                                                       numpy buffer in its own byte order
========  ===========================================  ==========================================

Big-endian numbers, times and strings travel little-endian and are swapped back on decode.
``NaT`` is sent as an Arrow null whose data slot still holds numpy's NaT bit pattern (the
minimum int64); every other value is sent as is (NaN payloads included), so decoding is bit
exact. When decoding data from elsewhere, nulls become the variable's fill value (or NaT,
NaN, an empty string) and compatible Arrow types are converted (cast, or parsed for strings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy
import pyarrow as pa
from zcollection.errors import SchemaError

NATIVE = "native"
INT64 = "int64"
COMPLEX = "complex"
BYTES = "bytes"
UTF32LE = "utf32le"
RAW = "raw"

#: Name of the trailing tensor dimension holding [real, imaginary] of complex numbers.
COMPLEX_DIMENSION = "complex"

_ARROW_TIME_UNITS = frozenset({"s", "ms", "us", "ns"})
_NAT = numpy.iinfo(numpy.int64).min


@dataclass(frozen=True)
class ElementCodec:
    """The Arrow form of one numpy dtype."""

    #: The variable's numpy dtype.
    dtype: numpy.dtype[Any]
    #: The numpy dtype of the elements as they travel (little-endian for numbers).
    wire: numpy.dtype[Any]
    #: The numpy dtype of one Arrow element (a float component for complex numbers).
    element: numpy.dtype[Any]
    #: The Arrow type of one element.
    value_type: pa.DataType
    #: One of NATIVE, INT64, COMPLEX, BYTES, UTF32LE, RAW.
    encoding: str

    @property
    def is_complex(self) -> bool:
        """Return whether each value travels as two elements (real, imaginary)."""
        return self.encoding == COMPLEX

    @property
    def is_time(self) -> bool:
        """Return whether NaT travels as an Arrow null."""
        return self.dtype.kind in "mM"


def element_codec(dtype: Any) -> ElementCodec:
    """Return the Arrow encoding of ``dtype``."""
    dtype = numpy.dtype(dtype)
    kind = dtype.kind
    little = dtype.newbyteorder("<") if dtype.byteorder in "<>=" else dtype
    if kind == "b":
        return ElementCodec(dtype, dtype, dtype, pa.bool_(), NATIVE)
    if kind in "iu" or (kind == "f" and dtype.itemsize in (2, 4, 8)):
        return ElementCodec(dtype, little, little, pa.from_numpy_dtype(little), NATIVE)
    if kind == "c" and dtype.itemsize in (8, 16):
        component = numpy.dtype(f"<f{dtype.itemsize // 2}")
        return ElementCodec(dtype, little, component, pa.from_numpy_dtype(component), COMPLEX)
    if kind in "mM":
        unit, count = numpy.datetime_data(dtype)
        if count == 1 and unit in _ARROW_TIME_UNITS:
            value_type = pa.timestamp(unit) if kind == "M" else pa.duration(unit)
            return ElementCodec(dtype, little, little, value_type, NATIVE)
        return ElementCodec(dtype, little, little, pa.int64(), INT64)
    if kind == "S":
        return ElementCodec(dtype, dtype, dtype, pa.binary(dtype.itemsize), BYTES)
    if kind == "U":
        return ElementCodec(dtype, little, little, pa.binary(dtype.itemsize), UTF32LE)
    if dtype.itemsize == 0 or dtype.fields is not None or dtype.hasobject:
        raise SchemaError(f"dtype {dtype} cannot travel in Arrow")
    return ElementCodec(dtype, dtype, dtype, pa.binary(dtype.itemsize), RAW)


def as_dtype(array: numpy.ndarray[Any, Any], dtype: numpy.dtype[Any]) -> numpy.ndarray[Any, Any]:
    """Return ``array`` as ``dtype``; a change of byte order only swaps bytes (bit exact)."""
    if array.dtype == dtype:
        return array
    if array.dtype.newbyteorder("<") == dtype.newbyteorder("<"):
        return array.byteswap().view(dtype)
    return array.astype(dtype)


def to_arrow(flat: numpy.ndarray[Any, Any], codec: ElementCodec) -> pa.Array:
    """Return the Arrow array of the 1-D contiguous elements ``flat`` (zero-copy if possible).

    ``flat`` has the dtype ``codec.element``.
    """
    if codec.dtype.kind == "b":
        return pa.array(flat, type=pa.bool_())
    count = int(flat.shape[0])
    validity = None
    nulls = 0
    if codec.is_time:
        valid = flat.view("<i8") != _NAT
        nulls = count - int(numpy.count_nonzero(valid))
        if nulls:
            validity = pa.py_buffer(numpy.packbits(valid, bitorder="little"))
    data = pa.py_buffer(flat.view(numpy.uint8))
    return pa.Array.from_buffers(codec.value_type, count, [validity, data], null_count=nulls)


def from_arrow(
    values: pa.Array, codec: ElementCodec, name: str
) -> tuple[numpy.ndarray[Any, Any], numpy.ndarray[Any, Any] | None]:
    """Return the elements of ``values`` (dtype ``codec.element``) and their null mask.

    The array is a read-only view of the Arrow memory when the types match exactly.

    Raises:
        SchemaError: If ``values`` cannot be converted to the variable's dtype.
    """
    if values.type != codec.value_type:
        return _foreign(values, codec, name)
    invalid = _null_mask(values)
    if codec.dtype.kind == "b":
        array = values.fill_null(False).to_numpy(zero_copy_only=False)
        return numpy.asarray(array, dtype=bool), invalid
    count = len(values)
    data = values.buffers()[1]
    if count == 0 or data is None:
        return numpy.empty(0, dtype=codec.element), invalid
    itemsize = codec.element.itemsize
    array = numpy.frombuffer(
        data, dtype=codec.element, count=count, offset=values.offset * itemsize
    )
    return array, invalid


def _null_mask(values: pa.Array) -> numpy.ndarray[Any, Any] | None:
    if not values.null_count:
        return None
    return numpy.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)


def _foreign(
    values: pa.Array, codec: ElementCodec, name: str
) -> tuple[numpy.ndarray[Any, Any], numpy.ndarray[Any, Any] | None]:
    """Convert Arrow values of another type than the canonical one (sent by other clients)."""
    kind = codec.dtype.kind
    invalid = _null_mask(values)
    vtype = values.type
    if isinstance(vtype, pa.BaseExtensionType):
        raise SchemaError(f"column {name!r}: unexpected Arrow type {vtype}")
    try:
        if kind in "US" and (_is_text(vtype) or _is_binary(vtype)):
            return _strings(values, codec, name), invalid
        if kind in "mM" and (
            pa.types.is_timestamp(vtype) or pa.types.is_duration(vtype) or pa.types.is_date(vtype)
        ):
            array = values.to_numpy(zero_copy_only=False)
            if array.dtype.kind != kind:
                raise SchemaError(f"column {name!r}: cannot read {vtype} as {codec.dtype}")
            return array.astype(codec.element), invalid
        if codec.encoding in (NATIVE, COMPLEX, INT64) and _is_number(vtype):
            cast = values.cast(codec.value_type)
            return from_arrow(cast, codec, name)[0], invalid
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError) as exc:
        if isinstance(exc, SchemaError):
            raise
        raise SchemaError(f"column {name!r}: cannot read {vtype} as {codec.dtype}: {exc}") from exc
    raise SchemaError(
        f"column {name!r}: Arrow type {vtype} does not match dtype {codec.dtype} "
        f"(expected {codec.value_type})"
    )


def _is_text(vtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(vtype) or pa.types.is_large_string(vtype) or vtype == pa.string_view()
    )


def _is_binary(vtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_binary(vtype)
        or pa.types.is_large_binary(vtype)
        or pa.types.is_fixed_size_binary(vtype)
        or vtype == pa.binary_view()
    )


def _is_number(vtype: pa.DataType) -> bool:
    return bool(pa.types.is_integer(vtype) or pa.types.is_floating(vtype))


def _strings(values: pa.Array, codec: ElementCodec, name: str) -> numpy.ndarray[Any, Any]:
    """Return numpy fixed-width strings of variable-length Arrow strings or bytes."""
    unicode = codec.dtype.kind == "U"
    width = codec.dtype.itemsize // 4 if unicode else codec.dtype.itemsize
    items: list[Any] = []
    for item in values.to_pylist():
        if item is None:
            item = "" if unicode else b""
        elif unicode and isinstance(item, bytes):
            item = item.decode("utf-8")
        elif not unicode and isinstance(item, str):
            item = item.encode("utf-8")
        if len(item.rstrip("\x00" if unicode else b"\x00")) > width:
            raise SchemaError(f"column {name!r}: {item!r} does not fit dtype {codec.dtype}")
        items.append(item)
    return numpy.array(items, dtype=codec.element).reshape(len(items))


def null_replacement(dtype: numpy.dtype[Any], fill_value: Any, name: str) -> Any:
    """Return the value standing for an Arrow null in a variable of ``dtype``.

    Raises:
        SchemaError: If the variable has no fill value and its dtype no natural missing value.
    """
    if fill_value is not None:
        return fill_value
    kind = dtype.kind
    if kind in "mM":
        return dtype.type("NaT", numpy.datetime_data(dtype)[0])
    if kind in "fc":
        return numpy.nan
    if kind in "US":
        return dtype.type()
    raise SchemaError(f"column {name!r} holds nulls, but the variable has no fill value")
