"""The one place engine errors become Flight errors.

Flight (through pyarrow) offers these error kinds without leaking a traceback: failed
(gRPC UNKNOWN), unauthorized (PERMISSION_DENIED), unauthenticated, unavailable, internal,
timed out and cancelled. The engine's error code, the kind and the request id travel in
``extra_info`` as JSON, and the message starts with ``[CODE]``.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pyarrow.flight as flight
import zcollection as zc
from zcollection_proto import CommandError

from .names import InvalidNameError

_log = logging.getLogger("zcollection_server")

#: Error kinds of the wire contract, by engine class (most specific first).
KINDS: list[tuple[type[BaseException], str]] = [
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

#: Flight error class of each kind.
FLIGHT_CLASSES: dict[str, type[flight.FlightError]] = {
    "not_found": flight.FlightServerError,
    "already_exists": flight.FlightServerError,
    "invalid_argument": flight.FlightServerError,
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


def to_flight_error(exc: BaseException, request_id: str) -> flight.FlightError:
    """Return the Flight error a client receives for ``exc`` (never a traceback)."""
    if isinstance(exc, flight.FlightError):
        return exc
    kind = kind_of(exc)
    if kind == "internal":
        _log.error("request %s failed with an internal error", request_id, exc_info=exc)
        code = "INTERNAL"
        message = "internal server error"
    else:
        code = getattr(exc, "code", None) or "INVALID_ARGUMENT"
        message = str(exc)
    if isinstance(exc, Unimplemented):
        kind = "unimplemented"
    info: dict[str, Any] = {"code": code, "kind": kind, "request_id": request_id}
    cls = FLIGHT_CLASSES.get(kind, flight.FlightServerError)
    return cls(f"[{code}] {message} (request {request_id})", json.dumps(info).encode())


def shutting_down(request_id: str) -> flight.FlightUnavailableError:
    """Return the error of a call refused or ended because the server is shutting down."""
    info = {"code": "UNAVAILABLE", "kind": "unavailable", "request_id": request_id}
    return flight.FlightUnavailableError(
        f"[UNAVAILABLE] the server is shutting down (request {request_id})",
        json.dumps(info).encode(),
    )
