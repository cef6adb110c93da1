"""Process-wide tuning of the C allocator for a server that moves large buffers."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

_log = logging.getLogger("zcollection_server")

#: glibc's ``mallopt`` parameter number of ``M_ARENA_MAX``.
_M_ARENA_MAX = -8


def limit_malloc_arenas(count: int) -> bool:
    """Cap glibc's malloc arenas at ``count`` (0: leave the default); return whether set.

    glibc gives each thread that allocates its own arena, up to 8 per core. The server
    decodes and writes record batches of megabytes on many threads (gRPC, asyncio's
    workers, zarr's codecs): memory freed in one arena is not reused by the others, and
    the process keeps tens to hundreds of MiB more than it holds. One arena per core keeps
    the peak of a large do_put near what it holds, at the price of some lock contention
    (see BENCHMARKS.md). Other C libraries (musl, macOS) are left alone.
    """
    if count <= 0:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_ARENA_MAX, count))
    if not done:
        _log.debug("mallopt(M_ARENA_MAX, %d) refused", count)
    return done
