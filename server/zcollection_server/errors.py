"""The one place engine errors become Flight errors.

Every message starts with ``[CODE]`` (the engine's error code) and ends with the request id.
Kinds and the gRPC status a client sees:

- not found -> NOT_FOUND and invalid argument -> INVALID_ARGUMENT (raised as Arrow's
  KeyError / Invalid statuses, which carry no ``extra_info``: the code is in the message);
- unimplemented -> UNIMPLEMENTED;
- already exists -> UNKNOWN (Flight "failed"), permission denied -> PERMISSION_DENIED,
  unauthenticated -> UNAUTHENTICATED, unavailable -> UNAVAILABLE, internal -> INTERNAL, each
  with JSON ``extra_info`` ``{"code", "kind", "request_id"}``.

pyarrow attaches the formatted Python exception to statuses raised from Python; the server
sets ``sys.tracebacklimit = 0`` so that text never holds a traceback (its own logs format
tracebacks explicitly).
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import zcollection as zc
from zcollection_proto import CommandError

from .names import InvalidNameError

_log = logging.getLogger("zcollection_server")


class Unauthenticated(zc.ZCollectionError):
    """A call without valid credentials (sent as UNAUTHENTICATED)."""

    code = "UNAUTHENTICATED"


class PermissionDenied(zc.ReadOnlyError):
    """A call the caller's permissions forbid (sent as PERMISSION_DENIED)."""

    code = "PERMISSION_DENIED"


#: Error kinds of the wire contract, by engine class (most specific first).
KINDS: list[tuple[type[BaseException], str]] = [
    (Unauthenticated, "unauthenticated"),
    (PermissionDenied, "permission_denied"),
    (zc.CollectionNotFoundError, "not_found"),
    (zc.CollectionExistsError, "already_exists"),
    (zc.ReadOnlyError, "permission_denied"),
    (zc.ConflictError, "unavailable"),
    (zc.StoreError, "unavailable"),
    (InvalidNameError, "invalid_argument"),
    (CommandError, "invalid_argument"),
    (zc.SchemaError, "invalid_argument"),
    (zc.ExpressionError, "invalid_argument"),
    (zc.PartitionError, "invalid_argument"),
    (zc.InvalidURLError, "invalid_argument"),
    (zc.FormatVersionError, "invalid_argument"),
    (zc.CatalogDisabledError, "invalid_argument"),
    (zc.ZCollectionError, "invalid_argument"),
]


class NotFound(pa.ArrowKeyError):
    """Sent as gRPC NOT_FOUND."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidArgument(pa.ArrowInvalid):
    """Sent as gRPC INVALID_ARGUMENT."""


class NotImplementedCall(NotImplementedError):
    """Sent as gRPC UNIMPLEMENTED."""


#: Statuses without extra_info, by kind.
STATUS_CLASSES: dict[str, type[Exception]] = {
    "not_found": NotFound,
    "invalid_argument": InvalidArgument,
    "unimplemented": NotImplementedCall,
}

#: Flight error class of the other kinds.
FLIGHT_CLASSES: dict[str, type[flight.FlightError]] = {
    "already_exists": flight.FlightServerError,
    "permission_denied": flight.FlightUnauthorizedError,
    "unauthenticated": flight.FlightUnauthenticatedError,
    "unavailable": flight.FlightUnavailableError,
    "internal": flight.FlightInternalError,
}


class ClientError(zc.ZCollectionError, ValueError):
    """A request the server refuses (bad descriptor, unknown action, ...)."""

    code = "INVALID_REQUEST"


class Unimplemented(zc.ZCollectionError):
    """A Flight call this server does not offer."""

    code = "UNIMPLEMENTED"


def new_request_id() -> str:
    """Return a short random request id."""
    return uuid.uuid4().hex[:16]


def kind_of(exc: BaseException) -> str:
    """Return the wire error kind of an exception."""
    if isinstance(exc, flight.FlightUnauthenticatedError):
        return "unauthenticated"
    # Anything outside the error tree (a KeyError, TypeError, ValueError... included) is a
    # bug of a handler: requests are checked, and the engine raises its own classes, before.
    for cls, kind in KINDS:
        if isinstance(exc, cls):
            return kind
    return "internal"


def hide_python_tracebacks() -> None:
    """Keep tracebacks out of the Python exception text pyarrow sends with a status."""
    sys.tracebacklimit = 0


def to_flight_error(exc: BaseException, request_id: str) -> Exception:
    """Return the error a client receives for ``exc`` (never a traceback)."""
    if isinstance(exc, flight.FlightError | NotFound | InvalidArgument | NotImplementedCall):
        return exc
    kind = kind_of(exc)
    if kind == "internal":
        _log.error(
            "internal error request_id=%s",
            request_id,
            exc_info=exc,
            extra={"request_id": request_id},
        )
        code = "INTERNAL"
        message = "internal server error"
    else:
        code = getattr(exc, "code", None) or "INVALID_ARGUMENT"
        message = _capped(str(exc))
    if isinstance(exc, Unimplemented):
        kind = "unimplemented"
    text = f"[{code}] {message} (request {request_id})"
    if kind in STATUS_CLASSES:
        return STATUS_CLASSES[kind](text)
    info: dict[str, Any] = {"code": code, "kind": kind, "request_id": request_id}
    cls = FLIGHT_CLASSES.get(kind, flight.FlightServerError)
    return cls(text, json.dumps(info).encode())


#: Longest message sent, in UTF-8 bytes: messages echo client input, and gRPC refuses a
#: status whose headers (message, percent-encoded, and pyarrow's detail) pass 16 KiB.
MAX_MESSAGE_BYTES = 1024


def _capped(message: str) -> str:
    raw = message.encode("utf-8", "replace")
    if len(raw) <= MAX_MESSAGE_BYTES:
        return message
    head = raw[:MAX_MESSAGE_BYTES].decode("utf-8", "ignore")
    return f"{head}... ({len(raw)} bytes, cut)"


def shutting_down(request_id: str) -> flight.FlightUnavailableError:
    """Return the error of a call refused or ended because the server is shutting down."""
    info = {"code": "UNAVAILABLE", "kind": "unavailable", "request_id": request_id}
    return flight.FlightUnavailableError(
        f"[UNAVAILABLE] the server is shutting down (request {request_id})",
        json.dumps(info).encode(),
    )
