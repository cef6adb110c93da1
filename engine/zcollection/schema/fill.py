"""JSON encoding of fill values (non-finite floats as strings, as the on-disk format asks)."""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy

from ..errors import SchemaError


def _float_to_json(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _float_from_json(value: Any) -> float:
    if isinstance(value, str):
        table = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        if value not in table:
            raise SchemaError(f"invalid float fill value {value!r}")
        return table[value]
    return float(value)


def normalize_fill_value(dtype: numpy.dtype[Any], value: Any) -> Any:
    """Return ``value`` as a numpy scalar of ``dtype`` (None stays None)."""
    if value is None:
        return None
    try:
        if dtype.kind in "mM" and isinstance(value, str) and value == "NaT":
            return dtype.type("NaT", numpy.datetime_data(dtype)[0])
        result = numpy.asarray(value).astype(dtype, casting="unsafe")[()]
    except (TypeError, ValueError, OverflowError) as exc:
        raise SchemaError(f"fill value {value!r} does not fit dtype {dtype}") from exc
    if (
        dtype.kind in "iu"
        and numpy.asarray(value).dtype.kind in "iub"
        and int(result) != int(value)
    ):
        raise SchemaError(f"fill value {value!r} overflows dtype {dtype}")
    return result


def fill_value_to_json(dtype: numpy.dtype[Any], value: Any) -> Any:
    """Encode a fill value of ``dtype`` as JSON."""
    if value is None:
        return None
    kind = dtype.kind
    if kind == "b":
        return bool(value)
    if kind in "iu":
        return int(value)
    if kind == "f":
        return _float_to_json(float(value))
    if kind == "c":
        c = complex(value)
        return [_float_to_json(c.real), _float_to_json(c.imag)]
    if kind in "mM":
        scalar = numpy.asarray(value).astype(dtype)[()]
        return "NaT" if numpy.isnat(scalar) else int(scalar.view("i8"))
    if kind == "U":
        return str(value)
    if kind == "S":
        return base64.b64encode(bytes(value)).decode("ascii")
    raise SchemaError(f"unsupported dtype {dtype}")


def fill_value_from_json(dtype: numpy.dtype[Any], payload: Any) -> Any:
    """Decode a JSON fill value for ``dtype``."""
    if payload is None:
        return None
    kind = dtype.kind
    if kind == "f":
        return dtype.type(_float_from_json(payload))
    if kind == "c":
        if isinstance(payload, list) and len(payload) == 2:
            return dtype.type(complex(_float_from_json(payload[0]), _float_from_json(payload[1])))
        return dtype.type(complex(payload))
    if kind in "mM":
        unit = numpy.datetime_data(dtype)[0]
        if payload == "NaT":
            return dtype.type("NaT", unit)
        if isinstance(payload, str):
            return numpy.asarray(payload).astype(dtype)[()]
        return numpy.int64(payload).view(dtype)
    if kind == "S":
        return dtype.type(base64.b64decode(payload)) if isinstance(payload, str) else payload
    return normalize_fill_value(dtype, payload)
