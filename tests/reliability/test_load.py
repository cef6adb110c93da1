"""Load: 32 concurrent readers and 4 concurrent writers against ONE server subprocess over a
local root, for 60 seconds (``ZC_LOAD_SECONDS`` to change it).

- readers: half use ``zcollection_client`` (queries with random filters, variables and row
  selections), half plain ``pyarrow.flight`` (``get_flight_info`` then ``do_get`` of random
  endpoints, or a query ticket straight to ``do_get``); every row they read must be whole
  (``check`` and ``blob`` derive from ``obs``), and a partition never shows fewer rows than
  ``get_flight_info`` announced (writers only add rows);
- writers: inserts of new partitions of their own and merges (``upsert``, ``concat``,
  ``time_series``) into eight shared partitions, with row ids no other writer uses, so the
  expected content is the union of what every writer was told was written.

Then: zero failed calls (none raised on a client, every call the server logged is ``ok``),
every inserted row read back (through the server and from disk), no lost write, a catalog
listing exactly the partitions on disk.
"""

from __future__ import annotations

import os
import random
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy
import pyarrow.flight as flight
import zcollection as zc
import zcollection_client as zcc
import zcollection_proto as zp

SECONDS = float(os.environ.get("ZC_LOAD_SECONDS", "60"))
READERS = 32
WRITERS = 4
SHARED = list(range(8))
#: Row ids: writer ``w`` uses ``(w + 1) * BLOCK + counter``; the initial rows are below BLOCK.
BLOCK = 10**12


@dataclass
class Tally:
    """What the threads did, and what went wrong."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rows_read: int = 0
    failures: list[str] = field(default_factory=list)
    #: Row ids acknowledged as written, by partition key.
    written: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))

    def count(self, kind: str, rows: int = 0) -> None:
        with self.lock:
            self.calls[kind] += 1
            self.rows_read += rows

    def fail(self, who: str) -> None:
        with self.lock:
            self.failures.append(f"{who}: {traceback.format_exc()}")


def _columns(table: Any) -> dict[str, Any]:
    """The columns of an Arrow table as numpy (tensors as 2-D arrays)."""
    found = {}
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if hasattr(column, "to_numpy_ndarray"):
            found[name] = column.to_numpy_ndarray()
        else:
            found[name] = column.to_numpy(zero_copy_only=False)
    return found


def _filters(rng: random.Random, known: list[int]) -> str | None:
    choice = rng.randrange(5)
    if choice == 0:
        return None
    if choice == 1:
        picked = rng.sample(known, k=min(len(known), rng.randint(1, 3)))
        return f"num in ({', '.join(map(str, picked))},)"
    if choice == 2:
        return f"num <= {rng.choice(SHARED)}"
    if choice == 3:
        low = rng.choice(known)
        return f"num >= {low} and num < {low + rng.randint(1, 2000)}"
    return f"num == {rng.choice(known)} or not (num > 3)"


def client_reader(
    location: str, rel: Any, tally: Tally, stop: threading.Event, seed: int
) -> Callable[[], None]:
    rng = random.Random(seed)
    variables = [None, ["obs"], ["obs", "check"], ["obs", "blob", "num"], ["obs", "check", "blob"]]

    def run() -> None:
        options = zcc.ClientOptions(parallelism=2, timeout=120)
        with zcc.connect(location, options=options) as connection:
            collection = connection.open_collection("load")
            while not stop.is_set():
                try:
                    known = [*SHARED, *(rng.randrange(100, 100 + 4 * 1000) for _ in range(3))]
                    selection = None
                    if rng.random() < 0.2:
                        low = rng.randrange(0, 3 * BLOCK)
                        selection = zc.RowSelection(low, low + rng.randrange(1, 2 * BLOCK))
                    ds = collection.query(
                        filters=_filters(rng, known),
                        variables=rng.choice(variables),
                        selection=selection,
                    )
                    rows = 0
                    if ds is not None:
                        columns = {k: v.to_numpy() for k, v in ds.all_variables().items()}
                        rel.check_seq_rows(columns)
                        rows = len(columns["obs"])
                    tally.count("query", rows)
                except Exception:
                    tally.fail("client reader")
                    return

    return run


def flight_reader(
    location: str, rel: Any, tally: Tally, stop: threading.Event, seed: int
) -> Callable[[], None]:
    rng = random.Random(seed)
    options = flight.FlightCallOptions(timeout=120)

    def run() -> None:
        client = flight.connect(location)
        try:
            while not stop.is_set():
                if rng.random() < 0.3:
                    filters = _filters(rng, SHARED)
                    query = zp.Query(collection="load", max_batch_bytes=rng.choice([0, 4096]))
                    if filters:
                        query.filters = filters
                    table = client.do_get(flight.Ticket(zp.encode_command(query)), options)
                    columns = _columns(table.read_all())
                    rel.check_seq_rows(columns)
                    tally.count("do_get query", len(columns["obs"]))
                    continue
                info = client.get_flight_info(flight.FlightDescriptor.for_path("load"), options)
                tally.count("get_flight_info")
                endpoints = [e for e in info.endpoints if e.app_metadata]
                for endpoint in rng.sample(endpoints, k=min(len(endpoints), 3)):
                    announced = zp.EndpointInfo.FromString(endpoint.app_metadata).rows
                    columns = _columns(client.do_get(endpoint.ticket, options).read_all())
                    rel.check_seq_rows(columns)
                    # writers only add rows: a partition never shrinks
                    assert len(columns["obs"]) >= announced, (len(columns["obs"]), announced)
                    tally.count("do_get endpoint", len(columns["obs"]))
        except Exception:
            tally.fail("flight reader")
        finally:
            client.close()

    return run


def writer(
    location: str, rel: Any, tally: Tally, stop: threading.Event, index: int
) -> Callable[[], None]:
    rng = random.Random(1000 + index)
    own = [100 + index * 1000 + k for k in range(1000)]
    counter = (index + 1) * BLOCK

    def run() -> None:
        nonlocal counter
        options = zcc.ClientOptions(timeout=120)
        with zcc.connect(location, options=options) as connection:
            collection = connection.open_collection("load", mode="rw")
            new = 0
            while not stop.is_set():
                try:
                    nums = rng.sample(SHARED, k=rng.randint(1, 3))
                    if rng.random() < 0.4:
                        nums.append(own[new])
                        new += 1
                    sizes = [rng.randint(20, 400) for _ in nums]
                    keys = numpy.repeat(numpy.asarray(nums), sizes)
                    ids = counter + numpy.arange(keys.size)
                    counter += keys.size
                    merge = rng.choice(["upsert", "concat", "time_series"])
                    written = collection.insert(rel.seq_rows(keys, ids), merge=merge)
                    assert sorted(written) == sorted(f"num={n}" for n in nums), written
                    with tally.lock:
                        for num in nums:
                            tally.written[num].update(ids[keys == num].tolist())
                    tally.count(f"insert {merge}")
                except Exception:
                    tally.fail(f"writer {index}")
                    return

    return run


def test_32_readers_and_4_writers(rel: Any, spawn: Callable[..., Any], tmp_path: Path) -> None:
    root = tmp_path / "root"
    collection = rel.make_seq(str(root / "load"))
    initial = numpy.repeat(numpy.asarray(SHARED), 300)
    initial_ids = numpy.arange(initial.size)
    collection.insert(rel.seq_rows(initial, initial_ids))
    server = spawn("--root", str(root), "--port", "0")
    tally = Tally()
    for num in SHARED:
        tally.written[num].update(initial_ids[initial == num].tolist())
    stop = threading.Event()
    threads = [
        threading.Thread(target=make(server.location, rel, tally, stop, i), name=f"{kind}-{i}")
        for kind, make, count in (
            ("client-reader", client_reader, READERS // 2),
            ("flight-reader", flight_reader, READERS - READERS // 2),
            ("writer", writer, WRITERS),
        )
        for i in range(count)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while time.monotonic() - started < SECONDS and not tally.failures:
        time.sleep(0.2)
    stop.set()
    for thread in threads:
        thread.join(180)
    assert not any(t.is_alive() for t in threads), "a call never returned"
    elapsed = time.monotonic() - started
    summary = dict(sorted(tally.calls.items()))
    print(f"\n{elapsed:.0f} s: {summary}, {tally.rows_read} rows read")
    assert not tally.failures, tally.failures[0]
    assert sum(v for k, v in summary.items() if k.startswith("insert")) >= 4 * WRITERS
    assert summary.get("query", 0) >= READERS and summary.get("do_get endpoint", 0) >= READERS

    # zero failed calls: every call the server logged ended well
    calls = server.call_lines()
    statuses: dict[str, int] = defaultdict(int)
    for call in calls:
        statuses[call["status"]] += 1
    assert set(statuses) == {"ok"}, dict(statuses)
    assert len(calls) >= sum(summary.values())

    # every row acknowledged is there, through the server...
    expected = {num: numpy.array(sorted(ids)) for num, ids in tally.written.items()}
    with zcc.connect(server.location) as connection:
        remote = connection.open_collection("load")
        assert list(remote.partitions()) == [f"num={n}" for n in sorted(expected)]
        everything = remote.query()
        assert everything is not None
        columns = {k: v.to_numpy() for k, v in everything.all_variables().items()}
        rel.check_seq_rows(columns)
        for num, ids in expected.items():
            got = numpy.sort(columns["obs"][columns["num"] == num])
            assert numpy.array_equal(got, ids), f"num={num}: {ids.size - got.size} rows lost"
    assert server.stop() == 0
    # ... and on disk, with a catalog that lists every partition
    on_disk = zc.open_collection(str(root / "load"))
    assert list(on_disk.partitions()) == [f"num={n}" for n in sorted(expected)]
    stored = on_disk.query()
    assert stored is not None
    stored_columns = {k: v.to_numpy() for k, v in stored.all_variables().items()}
    rel.check_seq_rows(stored_columns)
    assert numpy.array_equal(numpy.sort(stored_columns["obs"]), numpy.sort(columns["obs"]))
