"""One structured log line per call: method, collection, rows, bytes, duration, status."""

from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from . import metrics

_log = logging.getLogger("zcollection_server.calls")


@dataclass
class CallRecord:
    """What one call did; logged once when it ends."""

    method: str
    request_id: str
    collection: str | None = None
    rows: int = 0
    bytes: int = 0
    status: str = "ok"
    started: float = field(default_factory=time.perf_counter)
    extra: dict[str, Any] = field(default_factory=dict)
    _done: bool = False

    def finish(self, status: str | None = None) -> None:
        """Log the call (once)."""
        if self._done:
            return
        self._done = True
        if status is not None:
            self.status = status
        seconds = time.perf_counter() - self.started
        metrics.REGISTRY.observe_call(
            method=self.method,
            collection=self.collection,
            status=self.status,
            rows=self.rows,
            nbytes=self.bytes,
            seconds=seconds,
        )
        fields = {
            "method": self.method,
            "collection": self.collection,
            "rows": self.rows,
            "bytes": self.bytes,
            "duration_ms": round(seconds * 1000, 3),
            "status": self.status,
            "request_id": self.request_id,
            **self.extra,
        }
        level = logging.INFO if self.status in ("ok", "cancelled") else logging.WARNING
        _log.log(level, "%s", json.dumps(fields) if JSON_LOGS else _text(fields))


JSON_LOGS = False


def _text(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in fields.items() if v is not None)


def _value(value: Any) -> str:
    """A value as one token: text from clients (names) may hold spaces or line breaks that
    would forge fields or log lines, so such text is quoted as JSON."""
    text = str(value)
    if text and text.isprintable() and not any(c in text for c in ' "='):
        return text
    return json.dumps(text)


def configure_logging(*, json_lines: bool, level: int = logging.INFO) -> None:
    """Configure the server's log output (plain ``key=value`` or one JSON object a line)."""
    global JSON_LOGS
    JSON_LOGS = json_lines
    handler = logging.StreamHandler()
    if json_lines:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("zcollection_server")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def full_traceback(exc_info: Any) -> str:
    """Format a traceback whatever ``sys.tracebacklimit`` says (the server sets it to 0)."""
    return "".join(traceback.format_exception(exc_info[0], exc_info[1], exc_info[2], limit=1000))


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        if request_id and f"request_id={request_id}" not in record.getMessage():
            head, sep, tail = text.partition("\n")
            text = f"{head} request_id={request_id}{sep}{tail}"
        return text

    def formatException(self, ei: Any) -> str:
        return full_traceback(ei).rstrip("\n")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        payload: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
        }
        try:
            decoded = json.loads(message)
            payload.update(decoded if isinstance(decoded, dict) else {"message": message})
        except ValueError:
            payload["message"] = message
        request_id = getattr(record, "request_id", None)
        if request_id:
            payload.setdefault("request_id", request_id)
        if record.exc_info and record.exc_info[1] is not None:
            payload["traceback"] = full_traceback(record.exc_info)
        return json.dumps(payload)
