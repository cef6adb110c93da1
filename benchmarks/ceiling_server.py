"""The wire ceiling: a bare pyarrow Flight server streaming record batches held in memory.

``python -m benchmarks.ceiling_server PATH`` loads the collection at ``PATH`` once, encodes
each partition with the same Arrow mapping and 4 MiB batches as the zcollection server, and
serves ticket ``all`` (every partition in one stream) and ``<i>`` (partition ``i``).
"""

from __future__ import annotations

import sys
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import zcollection as zc
from zcollection_proto import DEFAULT_MAX_BYTES, dataset_to_batches


class CeilingServer(flight.FlightServerBase):
    """Serves pre-encoded record batches; no engine, no I/O on the read path."""

    def __init__(self, partitions: list[list[pa.RecordBatch]], **kwargs: Any) -> None:
        super().__init__("grpc://127.0.0.1:0", **kwargs)
        self.partitions = partitions
        self.schema = partitions[0][0].schema

    def do_get(
        self, context: flight.ServerCallContext, ticket: flight.Ticket
    ) -> flight.FlightDataStream:
        which = ticket.ticket.decode()
        if which == "all":
            batches = [b for part in self.partitions for b in part]
        else:
            batches = self.partitions[int(which)]
        return flight.RecordBatchStream(pa.Table.from_batches(batches, schema=self.schema))


def load(path: str) -> list[list[pa.RecordBatch]]:
    """Encode each partition of the collection at ``path`` (all variables) in memory."""
    collection = zc.open_collection(path)
    parts = []
    for partition in collection.partitions():
        dataset = collection.query(filters=_filter(partition))
        assert dataset is not None
        parts.append(list(dataset_to_batches(dataset, axis="time", max_bytes=DEFAULT_MAX_BYTES)))
    return parts


def _filter(partition: str) -> str:
    return " and ".join(
        f"{name} == {int(value)}" for name, value in (c.split("=") for c in partition.split("/"))
    )


def main(argv: list[str]) -> int:
    """Load, then serve until killed."""
    server = CeilingServer(load(argv[0]))
    print(f"ceiling server listening on grpc://127.0.0.1:{server.port}", flush=True)
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
