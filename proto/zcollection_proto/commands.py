"""Encode and decode the protobuf commands, action bodies and typed values of the protocol.

Every message travels either serialized (protobuf binary) or as its canonical protobuf
JSON in UTF-8 (field names in snake_case as in the ``.proto`` files, or lowerCamelCase),
so a client without protobuf can send, for example::

    {"query": {"collection": "altimetry", "filters": "year == 2024", "variables": ["time"]}}

Decoding is strict: unknown fields, trailing garbage, an empty command or a command without
a collection raise :class:`CommandError`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy
from google.protobuf import json_format, unknown_fields
from google.protobuf.message import DecodeError, Message
from zcollection.errors import ZCollectionError

from .commands_pb2 import Command, ImmutableTicket, Insert, PartitionTicket, Query
from .common_pb2 import Scalar, TimeValue, Tolerance

__all__ = [
    "CommandBody",
    "CommandError",
    "command_body",
    "decode_command",
    "decode_message",
    "encode_command",
    "encode_message",
    "from_scalar",
    "make_command",
    "to_scalar",
    "tolerance_from_proto",
    "tolerance_to_proto",
]

#: The messages a Command can carry.
CommandBody = Query | PartitionTicket | ImmutableTicket | Insert

#: Name of the Command oneof field holding each body type.
_FIELD_OF: dict[type[Message], str] = {
    Query: "query",
    PartitionTicket: "partition",
    ImmutableTicket: "immutable",
    Insert: "insert",
}

_WHITESPACE = b" \t\r\n"


class CommandError(ZCollectionError, ValueError):
    """Raised when bytes received on the wire are not a valid command or action body."""

    code = "INVALID_COMMAND"


# -- generic messages ------------------------------------------------------------------------
def encode_message(message: Message, *, as_json: bool = False) -> bytes:
    """Serialize ``message`` to protobuf binary, or to canonical JSON (UTF-8) if ``as_json``."""
    if as_json:
        text = json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None)
        return text.encode("utf-8")
    return message.SerializeToString(deterministic=True)


def decode_message[M: Message](
    data: bytes | bytearray | memoryview | str, message_type: type[M]
) -> M:
    """Decode ``data`` (protobuf binary, or canonical protobuf JSON) as a ``message_type``.

    Raises:
        CommandError: If ``data`` is neither, or carries fields ``message_type`` does not know.
    """
    name = message_type.DESCRIPTOR.full_name
    if isinstance(data, str):
        return _from_json(data, message_type)
    raw = bytes(data)
    stripped = raw.lstrip(_WHITESPACE)
    if stripped.startswith(b"{"):
        try:
            return _from_json(_utf8(raw, name), message_type)
        except CommandError:
            if raw.startswith(b"{"):
                raise
            # A binary message may start with a whitespace byte; try that before giving up.
            try:
                return _from_binary(raw, message_type)
            except CommandError:
                pass
            raise
    return _from_binary(raw, message_type)


def _utf8(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"invalid {name}: JSON body is not UTF-8 ({exc})") from None


def _from_json[M: Message](text: str, message_type: type[M]) -> M:
    message = message_type()
    try:
        json_format.Parse(text, message, ignore_unknown_fields=False)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise CommandError(f"invalid {message_type.DESCRIPTOR.full_name} JSON: {exc}") from None
    return message


def _from_binary[M: Message](raw: bytes, message_type: type[M]) -> M:
    name = message_type.DESCRIPTOR.full_name
    message = message_type()
    try:
        message.ParseFromString(raw)
    except (DecodeError, ValueError, RecursionError) as exc:
        raise CommandError(f"invalid {name}: not protobuf nor JSON ({exc})") from None
    unknown = _unknown_field(message)
    if unknown is not None:
        raise CommandError(
            f"invalid {name}: unknown field {unknown} (garbage, or sent by a newer client?)"
        )
    return message


def _unknown_field(message: Message) -> str | None:
    """Return the path of the first unknown field found in ``message`` (recursively)."""
    found = unknown_fields.UnknownFieldSet(message)
    if len(found):
        return f"{message.DESCRIPTOR.full_name}#{found[0].field_number}"
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        children = value if _is_repeated(field) else [value]
        for child in children:
            path = _unknown_field(child)
            if path is not None:
                return path
    return None


def _is_repeated(field: Any) -> bool:
    repeated = getattr(field, "is_repeated", None)
    if repeated is not None:
        return bool(repeated)
    return bool(field.label == field.LABEL_REPEATED)


# -- commands --------------------------------------------------------------------------------
def make_command(body: Command | CommandBody) -> Command:
    """Wrap a Query, PartitionTicket, ImmutableTicket or Insert in a Command."""
    if isinstance(body, Command):
        return body
    field = _FIELD_OF.get(type(body))
    if field is None:
        raise TypeError(f"not a command body: {type(body).__name__}")
    command = Command()
    getattr(command, field).CopyFrom(body)
    return command


def encode_command(message: Command | CommandBody, *, as_json: bool = False) -> bytes:
    """Serialize a command (or a bare command body, wrapped first) for a descriptor or ticket."""
    return encode_message(make_command(message), as_json=as_json)


def decode_command(data: bytes | bytearray | memoryview | str) -> Command:
    """Decode the payload of a CMD descriptor or of a ticket (protobuf binary or JSON).

    Raises:
        CommandError: If ``data`` is garbage, carries no command, or names no collection.
    """
    command = decode_message(data, Command)
    which = command.WhichOneof("command")
    if which is None:
        raise CommandError(
            "empty command: expected one of " + ", ".join(sorted(_FIELD_OF.values()))
        )
    body = getattr(command, which)
    if not body.collection:
        raise CommandError(f"invalid {which} command: no collection")
    return command


def command_body(command: Command) -> CommandBody:
    """Return the Query, PartitionTicket, ImmutableTicket or Insert carried by ``command``.

    Raises:
        CommandError: If ``command`` carries nothing.
    """
    which = command.WhichOneof("command")
    if which is None:
        raise CommandError("empty command")
    body: CommandBody = getattr(command, which)
    return body


# -- typed values ----------------------------------------------------------------------------
def _time_unit(value: numpy.datetime64 | numpy.timedelta64) -> tuple[int, str]:
    unit, count = numpy.datetime_data(value.dtype)
    if unit == "generic":
        raise CommandError(f"{value!r} has no unit")
    if count != 1:
        raise CommandError(f"{value!r}: multiples of a unit are not supported")
    return int(numpy.asarray(value).view("<i8")[()]), unit


def to_scalar(value: Any) -> Scalar:
    """Return the Scalar of a Python or numpy value (bool, int, float, str, bytes, time)."""
    if isinstance(value, bool | numpy.bool_):
        return Scalar(bool_value=bool(value))
    if isinstance(value, numpy.datetime64):
        count, unit = _time_unit(value)
        return Scalar(datetime_value=TimeValue(count=count, unit=unit))
    if isinstance(value, numpy.timedelta64):
        count, unit = _time_unit(value)
        return Scalar(timedelta_value=TimeValue(count=count, unit=unit))
    if isinstance(value, numpy.unsignedinteger):
        return Scalar(uint_value=int(value))
    if isinstance(value, int | numpy.integer):
        number = int(value)
        if number >= 2**63:
            return Scalar(uint_value=number)
        return Scalar(int_value=number)
    if isinstance(value, float | numpy.floating):
        return Scalar(float_value=float(value))
    if isinstance(value, str):
        return Scalar(string_value=str(value))
    if isinstance(value, bytes):
        return Scalar(bytes_value=bytes(value))
    raise CommandError(f"cannot send {type(value).__name__} {value!r} as a scalar")


def from_scalar(scalar: Scalar) -> Any:
    """Return the Python / numpy value of a Scalar (numpy datetime64/timedelta64 for times).

    Raises:
        CommandError: If the scalar is empty or names an invalid time unit.
    """
    which = scalar.WhichOneof("value")
    if which is None:
        raise CommandError("empty scalar")
    if which in ("datetime_value", "timedelta_value"):
        time: TimeValue = getattr(scalar, which)
        kind = "M8" if which == "datetime_value" else "m8"
        try:
            dtype = numpy.dtype(f"<{kind}[{time.unit}]")
        except TypeError:
            raise CommandError(f"invalid time unit {time.unit!r}") from None
        if numpy.datetime_data(dtype)[0] == "generic":
            raise CommandError("a time value needs a unit")
        return numpy.array(time.count, dtype="<i8").view(dtype)[()]
    return getattr(scalar, which)


def tolerance_to_proto(tolerance: Any) -> Tolerance | None:
    """Return the Tolerance message of an ``upsert_within`` tolerance (None stays None)."""
    if tolerance is None:
        return None
    if isinstance(tolerance, numpy.timedelta64):
        count, unit = _time_unit(tolerance)
        return Tolerance(value=float(count), unit=unit)
    if isinstance(tolerance, bool | numpy.bool_) or not isinstance(
        tolerance, int | float | numpy.integer | numpy.floating
    ):
        raise CommandError(f"invalid tolerance {tolerance!r}: give a number or a timedelta64")
    return Tolerance(value=float(tolerance))


def tolerance_from_proto(tolerance: Tolerance) -> float | numpy.timedelta64:
    """Return the engine's tolerance of a Tolerance message.

    Raises:
        CommandError: If the unit is invalid, or the value is not integral with a unit.
    """
    if not tolerance.unit:
        return float(tolerance.value)
    value = tolerance.value
    if not math.isfinite(value) or value != int(value):
        raise CommandError(f"a tolerance in {tolerance.unit!r} must be a whole number: {value}")
    try:
        dtype = numpy.dtype(f"m8[{tolerance.unit}]")
    except TypeError:
        raise CommandError(f"invalid tolerance unit {tolerance.unit!r}") from None
    if numpy.datetime_data(dtype)[0] == "generic":
        raise CommandError("a tolerance unit is required")
    unit: Any = tolerance.unit
    return numpy.timedelta64(int(value), unit)
