"""One long-lived background event loop that runs the sync facade's coroutines."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _get_loop() -> asyncio.AbstractEventLoop:
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed() or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="zcollection-io", daemon=True)
            thread.start()
            _loop, _thread = loop, thread
        return _loop


def run_sync[T](coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the background loop and wait for its result."""
    loop = _get_loop()
    if threading.current_thread() is _thread:
        coro.close()
        raise RuntimeError(
            "zcollection's sync API was called from its own I/O loop; use the _async methods"
        )
    return asyncio.run_coroutine_threadsafe(coro, loop).result()


def io_loop() -> asyncio.AbstractEventLoop:
    """Return the background loop (started on first use)."""
    return _get_loop()
