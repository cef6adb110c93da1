"""One concurrent reader: ``python -m benchmarks.client_worker URI COLLECTION``.

Connects and opens the collection, prints ``ready``, then for each ``go`` line on stdin
runs a full query through ``zcollection_client`` and prints one JSON line with its wall
clock start and end, the bytes read and the CPU seconds it used. Ends at end of input.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import zcollection_client


def main(argv: list[str]) -> int:
    """Serve ``go`` requests from stdin until it closes."""
    uri, name = argv
    with zcollection_client.connect(uri) as connection:
        collection = connection.open_collection(name)
        print("ready", flush=True)
        for line in sys.stdin:
            if line.strip() != "go":
                continue
            cpu = _cpu()
            start = time.time()
            dataset = collection.query()
            end = time.time()
            cpu = _cpu() - cpu
            assert dataset is not None
            size = sum(v.to_numpy().nbytes for v in dataset.all_variables().values())
            del dataset
            print(json.dumps({"start": start, "end": end, "bytes": size, "cpu": cpu}), flush=True)
    return 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
