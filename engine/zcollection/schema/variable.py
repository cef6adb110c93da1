"""Dimensions and variables of a schema."""

from __future__ import annotations

import copy
import enum
import json
from dataclasses import dataclass, field, replace
from typing import Any

import numpy

from ..codecs import CodecStack, auto_codecs
from ..errors import SchemaError
from .fill import fill_value_from_json, fill_value_to_json, normalize_fill_value
from .paths import check_name

#: numpy dtype kinds the engine stores.
SUPPORTED_KINDS = "biufcmMUS"
#: Widest item size (bytes) of the float kinds Zarr v3 can store.
_MAX_ITEMSIZE = {"f": 8, "c": 16}


def parse_dtype(dtype: Any) -> numpy.dtype[Any]:
    """Return a supported numpy dtype or raise SchemaError."""
    try:
        result = numpy.dtype(dtype)
    except TypeError as exc:
        raise SchemaError(f"invalid dtype {dtype!r}") from exc
    if result.kind not in SUPPORTED_KINDS or result.fields is not None or result.subdtype:
        raise SchemaError(f"unsupported dtype {result}; use bool, numbers, datetimes or strings")
    if result.itemsize > _MAX_ITEMSIZE.get(result.kind, result.itemsize):
        # Extended precision (longdouble, clongdouble) has no Zarr v3 data type.
        raise SchemaError(f"unsupported dtype {result}; Zarr stores floats up to 64 bits")
    if result.kind in "mM" and numpy.datetime_data(result)[0] == "generic":
        raise SchemaError(f"{result} has no unit; give one, e.g. datetime64[ns]")
    if result.kind in "US" and result.itemsize == 0:
        raise SchemaError(f"{result} has no width; give one, e.g. <U16")
    return result


@dataclass(frozen=True)
class Dimension:
    """A named axis of a dataset."""

    name: str
    size: int | None = None
    chunks: int | None = None
    shards: int | None = None

    def __post_init__(self) -> None:
        check_name(self.name, "dimension")
        for attr in ("size", "chunks", "shards"):
            value = getattr(self, attr)
            if value is not None and (not isinstance(value, int | numpy.integer) or value < 0):
                raise SchemaError(f"dimension {self.name!r}: {attr} must be a positive integer")
            if value is not None:
                object.__setattr__(self, attr, int(value))
        if self.chunks == 0 or self.shards == 0:
            raise SchemaError(f"dimension {self.name!r}: chunks and shards must be positive")
        if self.shards is not None and self.chunks is not None and self.shards % self.chunks:
            raise SchemaError(f"dimension {self.name!r}: shards must be a multiple of chunks")

    def to_json(self) -> dict[str, Any]:
        """Serialize the dimension to a JSON-compatible dict."""
        return {"name": self.name, "size": self.size, "chunks": self.chunks, "shards": self.shards}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Dimension:
        """Build a dimension from a JSON-compatible dict."""
        try:
            return cls(
                name=payload["name"],
                size=payload.get("size"),
                chunks=payload.get("chunks"),
                shards=payload.get("shards"),
            )
        except (KeyError, TypeError) as exc:
            raise SchemaError(f"invalid dimension JSON: {payload!r}") from exc


class VariableRole(enum.StrEnum):
    """Provenance / purpose of a variable in the schema."""

    USER = "user"
    FILLER = "filler"
    AUX = "aux"


def auto_codecs_default() -> CodecStack:
    """Default codec stack of a variable declared without codecs."""
    return auto_codecs(None)


@dataclass(frozen=True, eq=False)
class VariableSchema:
    """All information needed to create a Zarr v3 array for one variable."""

    name: str
    dtype: numpy.dtype[Any]
    dimensions: tuple[str, ...]
    fill_value: Any | None = None
    codecs: CodecStack = field(default_factory=auto_codecs_default)
    attrs: dict[str, Any] = field(default_factory=dict)
    role: VariableRole = VariableRole.USER
    immutable: bool = False

    def __post_init__(self) -> None:
        check_name(self.name, "variable")
        dtype = parse_dtype(self.dtype)
        object.__setattr__(self, "dtype", dtype)
        dims = (
            tuple(self.dimensions) if not isinstance(self.dimensions, str) else (self.dimensions,)
        )
        for dim in dims:
            check_name(dim, "dimension")
        if len(set(dims)) != len(dims):
            raise SchemaError(f"variable {self.name!r} repeats a dimension: {dims}")
        object.__setattr__(self, "dimensions", dims)
        object.__setattr__(self, "fill_value", normalize_fill_value(dtype, self.fill_value))
        if self.codecs is None:
            object.__setattr__(self, "codecs", auto_codecs(dtype))
        elif not isinstance(self.codecs, CodecStack):
            raise SchemaError(f"variable {self.name!r}: codecs must be a CodecStack")
        attrs = dict(self.attrs or {})
        try:
            json.dumps(attrs, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"variable {self.name!r}: attributes must be JSON data") from exc
        object.__setattr__(self, "attrs", attrs)
        object.__setattr__(self, "role", VariableRole(self.role))
        object.__setattr__(self, "immutable", bool(self.immutable))

    @property
    def ndim(self) -> int:
        """Return the number of dimensions of this variable."""
        return len(self.dimensions)

    def with_immutable(self, immutable: bool) -> VariableSchema:
        """Return a copy of this variable with the immutable flag overridden."""
        return replace(self, immutable=immutable)

    def to_json(self) -> dict[str, Any]:
        """Serialize the variable to a JSON-compatible dict."""
        return {
            "name": self.name,
            "dtype": self.dtype.str,
            "dimensions": list(self.dimensions),
            "fill_value": fill_value_to_json(self.dtype, self.fill_value),
            "codecs": self.codecs.to_json(),
            "attrs": to_jsonable(self.attrs),
            "role": self.role.value,
            "immutable": self.immutable,
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> VariableSchema:
        """Build a variable from a JSON-compatible dict."""
        try:
            dtype = parse_dtype(payload["dtype"])
            codecs = payload.get("codecs")
            return cls(
                name=payload["name"],
                dtype=dtype,
                dimensions=tuple(payload["dimensions"]),
                fill_value=fill_value_from_json(dtype, payload.get("fill_value")),
                codecs=CodecStack.from_json(codecs) if codecs is not None else auto_codecs(dtype),
                attrs=dict(payload.get("attrs") or {}),
                role=VariableRole(payload.get("role", "user")),
                immutable=bool(payload.get("immutable", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SchemaError):
                raise
            raise SchemaError(f"invalid variable JSON: {exc}") from exc

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VariableSchema):
            return NotImplemented
        return self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_json(), sort_keys=True))

    def __repr__(self) -> str:
        return (
            f"VariableSchema(name={self.name!r}, dtype={self.dtype}, "
            f"dimensions={self.dimensions}, fill_value={self.fill_value!r}, "
            f"role={self.role.value}, immutable={self.immutable})"
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, numpy.generic):
        return value.item()
    if isinstance(value, numpy.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON data: {type(value).__name__}")


def to_jsonable(attrs: dict[str, Any]) -> dict[str, Any]:
    """Return a deep copy of ``attrs`` made of plain JSON types (numpy values converted)."""
    result: dict[str, Any] = json.loads(json.dumps(attrs, default=_json_default, allow_nan=True))
    return copy.deepcopy(result)
