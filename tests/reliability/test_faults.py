"""Faults, against ``python -m zcollection_server`` subprocesses on loopback:

- SIGKILL in the middle of a large ``do_put`` (while the stream arrives, as the partitions
  start being written, and half-way through writing them): an icechunk collection is
  unchanged; on a local root every partition is the old one or the new one, and
  ``repair_catalog`` makes the catalog list exactly the partitions on disk;
- clients that disconnect in the middle of a stream: the server logs the call as cancelled,
  its in-flight gauge, threads and memory come back, and it keeps serving;
- a server killed and restarted on the same port: the same ``zcollection_client`` connection
  carries on (reads retry through the restart, writes work afterwards).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import pyarrow as pa
import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_client as zcc
import zcollection_proto as zp
from zcollection._sync import run_sync
from zcollection.collection.catalog import CATALOG_KEY
from zcollection.collection.catalog import decode as decode_catalog
from zcollection.collection.layout import walk_partitions

WIDTH = 64
ROWS_PER_MONTH = 40_000


# -- a collection worth killing a server for ------------------------------------------------
def wide_schema() -> zc.DatasetSchema:
    return (
        zc.Schema()
        .with_dimension("time", chunks=8192)
        .with_dimension("x", size=WIDTH, chunks=WIDTH)
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .with_variable(
            "v",
            dtype="float32",
            dimensions=("time", "x"),
            fill_value=numpy.float32("nan"),
            codecs=zc.codecs.profile("cloud-cold"),
        )
        .with_variable("x", dtype="int32", dimensions=("x",))
        .build()
    )


def wide_rows(start: str, months: int, seed: int) -> zc.Dataset:
    schema = wide_schema()
    known = schema.all_variables()
    n = months * ROWS_PER_MONTH
    step = numpy.timedelta64(30 * 86_400 * 10**9 // ROWS_PER_MONTH, "ns")
    time_ = numpy.datetime64(start, "ns") + numpy.arange(n) * step
    values = numpy.random.default_rng(seed).normal(size=(n, WIDTH)).astype("float32")
    return zc.Dataset(
        schema,
        {
            "time": zc.Variable(known["/time"], time_),
            "v": zc.Variable(known["/v"], values),
            "x": zc.Variable(known["/x"], numpy.arange(WIDTH, dtype="int32")),
        },
    )


#: The big put: rows over two stored months (merged) and six new ones.
def big_put() -> zc.Dataset:
    return wide_rows("2024-02-10", 8, seed=1)


MERGE = "time_series"


def make_wide(url: str) -> zc.Collection:
    collection = zc.create_collection(
        url,
        schema=wide_schema(),
        axis="time",
        partitioning=zc.partitioning.Date("time", resolution="M"),
        catalog_enabled=True,
    )
    collection.insert(wide_rows("2024-01-01", 3, seed=0))
    return collection


def partition_bytes(collection: zc.Collection, path: str) -> bytes:
    """The partitioned data of one partition, as bytes to compare."""
    loaded = run_sync(collection.load_partition_async(path, variables=["time", "v"]))
    return b"".join(
        numpy.ascontiguousarray(loaded[name].to_numpy()).tobytes() for name in ("time", "v")
    )


def rows_of(data: bytes) -> int:
    return len(data) // (8 + 4 * WIDTH)


@dataclass
class Versions:
    """Every partition as it was before the put and as the put leaves it, and how many
    entries of the store's folders a whole put changes (see ``changes``)."""

    old: dict[str, bytes]
    new: dict[str, bytes]
    changed: int


def versions(url: str, template: str) -> Versions:
    """Copy ``template`` to ``url``, read it, insert the big put there, read it again."""
    copy_store(template, url)
    collection = zc.open_collection(url, mode="rw")
    old = {p: partition_bytes(collection, p) for p in collection.partitions()}
    folder = Path(url.removeprefix("icechunk://"))
    before = entries(folder)
    collection.insert(big_put(), merge=MERGE)
    changed, _ = changes(folder, before)
    new = {p: partition_bytes(collection, p) for p in collection.partitions()}
    assert set(new) > set(old) and any(new[p] != old[p] for p in old)
    return Versions(old, new, changed)


def copy_store(source: str, target: str) -> None:
    shutil.copytree(source.removeprefix("icechunk://"), target.removeprefix("icechunk://"))


# -- killing a put -------------------------------------------------------------------------
def entries(folder: Path) -> dict[str, int]:
    """``{path: inode}`` of the entries of the folders a put writes to: the folders holding
    partitions (local), the chunks, manifests and snapshots (icechunk)."""
    found = {}
    parents = [*folder.glob("year=*")]
    parents += [folder / sub for sub in ("chunks", "manifests", "snapshots", "transactions")]
    for parent in parents:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            found.update({e.path: e.inode() for e in os.scandir(parent)})
    return found


def changes(folder: Path, before: dict[str, int]) -> tuple[int, int]:
    """How many entries are new or replaced since ``before``: all, and partitions only."""
    now = entries(folder)
    changed = [path for path, inode in now.items() if before.get(path) != inode]
    partitions = [p for p in changed if os.path.basename(p).startswith("month=")]
    return len(changed), len(partitions)


def _put_in_thread(
    location: str, table: pa.Table, sent_half: threading.Event
) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []
    batches = table.to_batches(max_chunksize=4096)
    command = zp.Insert(collection="wide", merge=MERGE)
    descriptor = flight.FlightDescriptor.for_command(zp.encode_command(command))

    def run() -> None:
        client = flight.connect(location)
        try:
            writer, reader = client.do_put(descriptor, table.schema)
            for i, batch in enumerate(batches):
                writer.write_batch(batch)
                if i == len(batches) // 2:
                    sent_half.set()
            writer.done_writing()
            reader.read()
            writer.close()
        except BaseException as exc:
            errors.append(exc)
        finally:
            sent_half.set()
            client.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def kill_during_put(
    spawn: Callable[..., Any], args: list[str], folder: Path, moment: str, expected: Versions
) -> None:
    """Start the big put against a new server and SIGKILL it at ``moment``: ``stream`` (half
    the batches sent), ``write-start`` (the first change on disk) or ``write-mid`` (three
    partitions replaced on a local root, 40 % of the files an icechunk put writes).

    The server writes two partitions at a time, so a put is caught half-way.
    """
    server = spawn(*args, env={"ZCOLLECTION_PARTITION_CONCURRENCY": "2"})
    table = zp.dataset_to_table(big_put(), axis="time")
    sent_half = threading.Event()
    before = entries(folder)
    thread, errors = _put_in_thread(server.location, table, sent_half)
    if moment == "stream":
        assert sent_half.wait(60)
    else:
        icechunk = (folder / "chunks").is_dir()

        def reached() -> bool:
            changed, partitions = changes(folder, before)
            if moment == "write-start":
                return changed >= 1
            return changed >= 0.4 * expected.changed if icechunk else partitions >= 3

        deadline = time.monotonic() + 60
        while not reached():
            assert time.monotonic() < deadline, "the put never started writing"
            assert thread.is_alive(), errors
    server.kill()
    thread.join(30)
    assert not thread.is_alive()
    assert errors, "the put finished before the server was killed"


MOMENTS = ["stream", "write-start", "write-mid"]


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The wide collection on both stores, and each partition's old and new version."""
    base = tmp_path_factory.mktemp("kill-templates")
    found: dict[str, Any] = {}
    for kind, url in (("local", str(base / "local")), ("icechunk", f"icechunk://{base}/ice")):
        make_wide(url)
        found[kind] = (url, versions(url + "-new", url))
    return found


@pytest.mark.parametrize("moment", MOMENTS)
def test_sigkill_during_a_put_on_a_local_root(
    rel: Any,
    spawn: Callable[..., Any],
    templates: dict[str, Any],
    tmp_path: Path,
    moment: str,
) -> None:
    template, expected = templates["local"]
    root = tmp_path / "root"
    copy_store(template, str(root / "wide"))
    kill_during_put(spawn, ["--root", str(root), "--port", "0"], root / "wide", moment, expected)
    url = str(root / "wide")
    collection = zc.open_collection(url, mode="rw")
    on_disk = run_sync(walk_partitions(collection.store.zarr_store(), collection.partitioning))
    # every partition is the old one or the new one; none is lost
    assert set(expected.old) <= set(on_disk) <= set(expected.new)
    outcome = {}
    for path in on_disk:
        data = partition_bytes(collection, path)
        if data == expected.old.get(path):
            outcome[path] = "old"
        else:
            assert data == expected.new[path], f"{path} is neither the old nor the new partition"
            outcome[path] = "new"
    if moment == "stream":
        assert set(outcome.values()) == {"old"}  # nothing was written yet
    elif moment == "write-mid":
        assert "new" in outcome.values()  # caught half-way: some partitions are new
    # the catalog lists what it listed before, or what the put wrote: repair makes it exact
    catalog = decode_catalog(collection.store.read_bytes(CATALOG_KEY) or b"")
    assert catalog is None or set(catalog) <= set(on_disk)
    server = spawn("--root", str(root), "--port", "0")
    connection = zcc.connect(server.location)
    remote = connection.open_collection("wide", mode="rw")
    assert remote.repair_catalog() == on_disk
    assert decode_catalog(collection.store.read_bytes(CATALOG_KEY) or b"") == on_disk
    assert list(remote.partitions()) == on_disk
    # no half-written leftovers either, once repaired
    hidden = [p.name for p in (root / "wide").glob("year=*/.*")]
    assert hidden == [], hidden
    # the server serves the collection as it is on disk, and takes the put again
    got = remote.query(variables=["time"])
    versions_on_disk = [(expected.new if outcome[p] == "new" else expected.old)[p] for p in on_disk]
    assert got is not None and got["time"].to_numpy().size == sum(map(rows_of, versions_on_disk))
    remote.insert(big_put(), merge=MERGE)
    again = zc.open_collection(url)
    assert {p: partition_bytes(again, p) for p in again.partitions()} == expected.new
    connection.close()


@pytest.mark.parametrize("moment", MOMENTS[::2])
def test_sigkill_during_a_put_on_icechunk(
    rel: Any,
    spawn: Callable[..., Any],
    templates: dict[str, Any],
    tmp_path: Path,
    moment: str,
) -> None:
    template, expected = templates["icechunk"]
    url = f"icechunk://{tmp_path}/ice"
    copy_store(template, url)
    config = tmp_path / "server.toml"
    config.write_text(f'[collections]\nwide = "{url}"\n')
    kill_during_put(
        spawn, ["--config", str(config), "--port", "0"], tmp_path / "ice", moment, expected
    )
    collection = zc.open_collection(url)
    assert list(collection.partitions()) == sorted(expected.old)
    assert {p: partition_bytes(collection, p) for p in collection.partitions()} == expected.old
    # the repository still takes the put
    server = spawn("--config", str(config), "--port", "0")
    connection = zcc.connect(server.location)
    connection.open_collection("wide", mode="rw").insert(big_put(), merge=MERGE)
    again = zc.open_collection(url)
    assert {p: partition_bytes(again, p) for p in again.partitions()} == expected.new
    connection.close()


# -- clients that go away ------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight partitions of 8 MiB: a stream far larger than what gRPC buffers."""
    root = tmp_path_factory.mktemp("big")
    make_wide(str(root / "wide"))
    return root


KILLED_CLIENT = """
import sys, time, pyarrow.flight as flight, zcollection_proto as zp
client = flight.connect(sys.argv[1])
query = zp.encode_command(zp.Query(collection="wide", max_batch_bytes=1 << 20))
reader = client.do_get(flight.Ticket(query))
reader.read_chunk()
print("reading", flush=True)
time.sleep(60)
"""


def _disconnect_mid_stream(location: str, how: str) -> None:
    if how == "kill":  # a client process that dies: the kernel closes its connection
        process = subprocess.Popen(
            [sys.executable, "-c", KILLED_CLIENT, location], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None and process.stdout.readline() == "reading\n"
        process.kill()
        process.wait(30)
        process.stdout.close()
        return
    client = flight.connect(location)
    query = zp.encode_command(zp.Query(collection="wide", max_batch_bytes=1 << 20))
    reader = client.do_get(flight.Ticket(query))
    reader.read_chunk()
    reader.read_chunk()
    if how == "cancel":
        reader.cancel()
    client.close()  # "close": the connection goes away under the running stream


def test_clients_that_disconnect_mid_stream_release_the_server(
    rel: Any, spawn: Callable[..., Any], big_root: Path
) -> None:
    server = spawn("--root", str(big_root), "--port", "0", "--metrics-port", "0")
    client = server.connect()
    expected = client.get_flight_info(flight.FlightDescriptor.for_path("wide")).total_records
    assert expected == 3 * ROWS_PER_MONTH
    repeats = 20

    def settled(streams: int) -> bool:
        cancelled = [c for c in server.call_lines("do_get") if c["status"] == "cancelled"]
        inflight = server.metrics().get("zcollection_server_inflight_calls", -1)
        return len(cancelled) == streams and inflight == 0

    _disconnect_mid_stream(server.location, "close")
    assert rel.wait_for(lambda: settled(1), 20), server.call_lines("do_get")
    threads, rss = server.threads(), server.rss()
    for i in range(1, repeats):
        how = "kill" if i in (5, 15) else "cancel" if i % 2 else "close"
        _disconnect_mid_stream(server.location, how)
    assert rel.wait_for(lambda: settled(repeats), 30), server.call_lines("do_get")
    # resources come back: threads and memory do not pile up with the streams
    assert rel.wait_for(lambda: server.threads() <= threads + 4, 10), (threads, server.threads())
    growth = server.rss() - rss
    assert growth < 150 * 2**20, f"RSS grew by {growth / 2**20:.0f} MiB over {repeats} streams"
    # and the server keeps serving
    table = client.do_get(flight.Ticket(zp.encode_command(zp.Query(collection="wide")))).read_all()
    assert table.num_rows == expected
    assert "Traceback" not in server.log_text()
    client.close()


# -- restarts ------------------------------------------------------------------------------
def test_clients_recover_after_a_server_restart_on_the_same_port(
    rel: Any, spawn: Callable[..., Any], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    rel.make_alti(str(root / "alti"), months=2)
    port = str(rel.free_port())
    server = spawn("--root", str(root), "--port", port)
    options = zcc.ClientOptions(retries=12, backoff=0.1, timeout=20)
    connection = zcc.connect(server.location, options=options)
    collection = connection.open_collection("alti", mode="rw")
    expected = collection.query()
    assert expected is not None
    for how in ("kill", "stop"):
        server.kill() if how == "kill" else server.stop()
        # the server comes back on the same port while the read below is retrying
        restarted: list[Any] = []

        def restart(into: list[Any] = restarted) -> None:
            into.append(spawn("--root", str(root), "--port", port))

        timer = threading.Timer(0.8, restart)
        timer.start()
        try:
            got = collection.query()
        finally:
            timer.join()
        server = restarted[0]
        rel.check_same(expected, got)
        # the same connection writes, lists and reads again
        rows = rel.alti_dataset("2024-03-01", 3, seed=len(how))
        assert collection.insert(rows) == ["year=2024/month=03"]
        assert list(collection.partitions())[-1] == "year=2024/month=03"
        assert collection.drop_partitions(filters="month == 3") == ["year=2024/month=03"]
        assert connection.health()
    connection.close()
