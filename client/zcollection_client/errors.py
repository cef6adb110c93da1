"""Flight errors from the server raised again as the engine's exception classes."""

from __future__ import annotations

import json
import re
from typing import Any

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


def from_flight_error(exc: BaseException) -> BaseException:
    """Return the zcollection exception matching a Flight error (others unchanged)."""
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
