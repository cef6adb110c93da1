"""Partition streams: record batches capped by bytes, with a bounded read-ahead."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pyarrow as pa
import zcollection as zc
from zcollection._sync import io_loop
from zcollection_proto import BatchMetadata, dataset_to_batches

from .calllog import CallRecord
from .errors import shutting_down, to_flight_error
from .sources import Source, stream_metadata


def partition_batches(
    source: Source,
    paths: list[str],
    variables: list[str],
    selection: zc.RowSelection | None,
    *,
    max_bytes: int,
    read_ahead: int,
    record: CallRecord,
) -> Iterator[tuple[pa.RecordBatch, pa.Buffer]]:
    """Yield ``(batch, app_metadata)`` for each partition in order.

    At most ``read_ahead`` partitions are read ahead of the one being sent, so memory stays
    bounded whatever the size of the result. Closing the generator (a client that went away)
    cancels the reads still pending.
    """
    loop = io_loop()
    pending: deque[tuple[str, Future[zc.Dataset]]] = deque()
    queue = iter(paths)
    extra = stream_metadata(source)

    def submit() -> None:
        path = next(queue, None)
        if path is not None:
            coro = source.load_async(path, variables, selection)
            pending.append((path, asyncio.run_coroutine_threadsafe(coro, loop)))

    for _ in range(read_ahead + 1):
        submit()
    try:
        while pending:
            path, future = pending.popleft()
            dataset = future.result()
            metadata = pa.py_buffer(
                BatchMetadata(collection=source.name, partition=path).SerializeToString()
            )
            for batch in dataset_to_batches(
                dataset, axis=source.axis, max_bytes=max_bytes, extra_metadata=extra
            ):
                if batch.num_rows == 0 and len(paths) > 1:
                    continue
                record.rows += batch.num_rows
                record.bytes += batch.nbytes
                yield batch, metadata
            batch = None  # the batches are views of the dataset: drop it entirely
            del dataset
            # only now: while a partition is sent, read_ahead more are read (not one more)
            submit()
    finally:
        for _, future in pending:
            future.cancel()


def cancellable(
    batches: Iterator[tuple[pa.RecordBatch, pa.Buffer]],
    record: CallRecord,
    on_end: Callable[[], None] | None = None,
    closing: Callable[[], bool] | None = None,
) -> Iterator[Any]:
    """Wrap a batch generator so the call is logged when it ends, however it ends.

    ``on_end`` runs once the stream is over (finished, failed or cancelled); the stream
    ends with an UNAVAILABLE error at its next batch once ``closing()`` is true.
    """
    try:
        for item in batches:
            if closing is not None and closing():
                raise shutting_down(record.request_id)
            yield item
            del item  # a batch keeps its whole partition alive: not while the next is read
    except GeneratorExit:
        record.finish("cancelled")
        raise
    except Exception as exc:
        error = to_flight_error(exc, record.request_id)
        record.finish(_status(error))
        raise error from None
    else:
        record.finish()
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()  # cancels the reads still pending
        if on_end is not None:
            on_end()


def _status(error: BaseException) -> str:
    text = str(error)
    return text[1 : text.index("]")] if text.startswith("[") and "]" in text else "error"
