"""In-process coordination of the readers and writers of stores without transactions.

Stores other than icechunk cannot commit several keys at once. Within one process (a Flight
server serving many clients, or threads sharing collections) these locks keep:

- writers of one collection one at a time (``writing``), so that two merges into the same
  partition, or two catalog updates, never lose each other's rows;
- a reader of a partition from seeing it half replaced (``partition``): a reader holds it
  shared while it reads the partition's arrays, a writer exclusively while it swaps the
  partition in (or, on stores that cannot swap a folder, while it rewrites it).

Processes sharing a store are not coordinated (use icechunk for that). The locks work from
any event loop and thread: the sync facade's loop, or a caller's own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass(eq=False)
class _Waiter:
    exclusive: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted: bool = False


@dataclass(eq=False)
class RWLock:
    """A first-come first-served readers-writer lock usable from several event loops."""

    _mutex: threading.Lock = field(default_factory=threading.Lock)
    _readers: int = 0
    _writer: bool = False
    _queue: deque[_Waiter] = field(default_factory=deque)

    def _free_for(self, exclusive: bool) -> bool:
        return not self._writer and (not exclusive or self._readers == 0)

    def _take(self, exclusive: bool) -> None:
        if exclusive:
            self._writer = True
        else:
            self._readers += 1

    async def acquire(self, exclusive: bool) -> None:
        loop = asyncio.get_running_loop()
        with self._mutex:
            if not self._queue and self._free_for(exclusive):
                self._take(exclusive)
                return
            waiter = _Waiter(exclusive, loop, loop.create_future())
            self._queue.append(waiter)
        try:
            await waiter.future
        except BaseException:
            with self._mutex:
                granted = waiter.granted
                if not granted:
                    self._queue.remove(waiter)
                    self._wake()
            if granted:
                self.release(exclusive)
            raise

    def release(self, exclusive: bool) -> None:
        with self._mutex:
            self._release_locked(exclusive)
            self._wake()

    def _wake(self) -> None:
        """Grant the lock to the waiters at the head of the queue (called under the mutex)."""
        while self._queue and self._free_for(self._queue[0].exclusive):
            waiter = self._queue.popleft()
            self._take(waiter.exclusive)
            waiter.granted = True
            try:
                waiter.loop.call_soon_threadsafe(_resolve, waiter.future)
            except RuntimeError:  # its loop is closed: nobody waits any more
                waiter.granted = False
                self._release_locked(waiter.exclusive)
            if waiter.exclusive:
                return

    def _release_locked(self, exclusive: bool) -> None:
        if exclusive:
            self._writer = False
        else:
            self._readers -= 1

    @contextlib.asynccontextmanager
    async def hold(self, *, exclusive: bool) -> AsyncIterator[None]:
        await self.acquire(exclusive)
        try:
            yield
        finally:
            self.release(exclusive)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


_registry: weakref.WeakValueDictionary[tuple[str, str], RWLock] = weakref.WeakValueDictionary()
_registry_lock = threading.Lock()


def _lock(store_key: str, name: str) -> RWLock:
    with _registry_lock:
        lock = _registry.get((store_key, name))
        if lock is None:
            lock = RWLock()
            _registry[(store_key, name)] = lock
        return lock


@contextlib.asynccontextmanager
async def writing(store_key: str, enabled: bool = True) -> AsyncIterator[None]:
    """Hold the writer's turn of the collection stored at ``store_key``."""
    if not enabled:
        yield
        return
    lock = _lock(store_key, "")
    async with lock.hold(exclusive=True):
        yield


@contextlib.asynccontextmanager
async def partition(
    store_key: str, path: str, *, exclusive: bool, enabled: bool = True
) -> AsyncIterator[None]:
    """Hold partition ``path`` of the collection at ``store_key`` (shared: reading it)."""
    if not enabled:
        yield
        return
    lock = _lock(store_key, "/" + path)
    async with lock.hold(exclusive=exclusive):
        yield
