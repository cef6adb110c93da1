"""Flight errors from the server raised again as the engine's exception classes."""

from __future__ import annotations

import json
import re
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
from zcollection.errors import (
    ERROR_CLASSES,
    CollectionExistsError,
    CollectionNotFoundError,
    ReadOnlyError,
    SchemaError,
    StoreError,
    ZCollectionError,
)
from zcollection_proto import CommandError


class RemoteError(ZCollectionError):
    """An error the server reported with a code this client does not know."""

    code = "REMOTE_ERROR"


class ServerUnavailableError(StoreError):
    """The server could not be reached (after retries) or did not answer within the timeout."""

    code = "UNAVAILABLE"


#: Codes of the wire contract that are not engine classes.
_EXTRA: dict[str, type[ZCollectionError]] = {
    CommandError.code: CommandError,
    "INVALID_COMMAND": CommandError,
    "INVALID_NAME": SchemaError,
    "INVALID_REQUEST": RemoteError,
    "UNAVAILABLE": ServerUnavailableError,
}

#: Fallback class per error kind.
_BY_KIND: dict[str, type[ZCollectionError]] = {
    "not_found": CollectionNotFoundError,
    "already_exists": CollectionExistsError,
    "permission_denied": ReadOnlyError,
    "unavailable": ServerUnavailableError,
}

_DETAIL = re.compile(r"\. Detail: \w+$")
_PREFIX = re.compile(r"^\[[A-Z_]+\] ")


def _info(exc: flight.FlightError) -> dict[str, Any]:
    raw = getattr(exc, "extra_info", None) or b""
    try:
        info = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


#: Errors the server sends as plain gRPC statuses (NOT_FOUND, INVALID_ARGUMENT, UNIMPLEMENTED).
STATUS_ERRORS = (pa.ArrowKeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError)
_CODED = re.compile(r"\[([A-Z_]+)\] (.*?) \(request ([0-9a-f]+)\)", re.DOTALL)
_STATUS_KINDS: dict[type[BaseException], str] = {
    pa.ArrowKeyError: "not_found",
    pa.ArrowInvalid: "invalid_argument",
    pa.ArrowNotImplementedError: "unimplemented",
}


def _from_status(exc: BaseException) -> BaseException:
    match = _CODED.search(str(exc))
    if match is None:
        return exc
    code, message, request_id = match.groups()
    kind = next((k for cls, k in _STATUS_KINDS.items() if isinstance(exc, cls)), "")
    cls = ERROR_CLASSES.get(code) or _EXTRA.get(code) or _BY_KIND.get(kind) or RemoteError
    return cls(f"{message} (request {request_id})")


def from_flight_error(exc: BaseException) -> BaseException:
    """Return the zcollection exception matching an error from the server (others unchanged)."""
    if isinstance(exc, STATUS_ERRORS):
        return _from_status(exc)
    if not isinstance(exc, flight.FlightError):
        return exc
    info = _info(exc)
    code = str(info.get("code", ""))
    message = _PREFIX.sub("", _DETAIL.sub("", str(exc)))
    cls = ERROR_CLASSES.get(code) or _EXTRA.get(code) or _BY_KIND.get(str(info.get("kind")))
    if cls is None:
        if isinstance(exc, flight.FlightUnavailableError | flight.FlightTimedOutError):
            cls = ServerUnavailableError  # unreachable, or no answer within the timeout
        elif isinstance(exc, flight.FlightUnauthenticatedError | flight.FlightUnauthorizedError):
            return exc
        else:
            cls = RemoteError
    error = cls(message)
    error.__cause__ = None
    return error
