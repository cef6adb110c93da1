"""The icechunk store: URLs, meta files, one commit per mutation, rollback, crash safety,
concurrent writers (rebase / conflict), versions (tags, snapshots, branches)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest
import zcollection as zc

ic = pytest.importorskip("icechunk")

from zcollection.store.icechunk import (  # noqa: E402
    IcechunkSession,
    IcechunkStore,
    meta_group,
    parse_url,
)

# -- helpers ---------------------------------------------------------------------------------


def _url(path: Path, **refs: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in refs.items())
    return f"icechunk://{path}" + (f"?{query}" if query else "")


def _create(url: str, ds: zc.Dataset, partitioning: Any, *, catalog: bool = False) -> Any:
    return zc.create_collection(
        url, schema=ds.schema, axis="time", partitioning=partitioning, catalog_enabled=catalog
    )


def _history(store: IcechunkStore, branch: str = "main") -> list[str]:
    """Return the commit messages of ``branch``, newest first."""
    repo = store.repository()
    assert repo is not None
    return [info.message for info in repo.ancestry(branch=branch)]


def _same_data(col: Any, expected: dict[str, zc.Dataset]) -> None:
    """Assert that each partition of ``col`` holds exactly the rows of ``expected[path]``."""
    assert list(col.partitions()) == sorted(expected)
    for path, ds in expected.items():
        month = int(path.rsplit("=", 1)[1])
        year = int(path.split("/")[0].split("=")[1])
        got = col.query(filters=f"year == {year} and month == {month}")
        assert got is not None
        for name in ("time", "ssh", "x_ac"):
            numpy.testing.assert_array_equal(got[name].to_numpy(), ds[name].to_numpy())


# -- URLs --------------------------------------------------------------------------------------


def test_url_forms():
    local = parse_url("icechunk:///data/repo?branch=dev")
    assert (local.kind, local.path, local.refs) == ("local", "/data/repo", {"branch": "dev"})
    assert parse_url("icechunk://file:///data/repo").path == "/data/repo"
    s3 = parse_url("icechunk+s3://bucket/pre/fix?endpoint_url=http://h:9000&tag=v1")
    assert (s3.kind, s3.path, s3.refs) == ("s3", "bucket/pre/fix", {"tag": "v1"})
    assert s3.options == {"endpoint_url": "http://h:9000"}
    nested = parse_url("icechunk://s3://bucket/prefix?region=eu-west-3&snapshot=ABC")
    assert (nested.kind, nested.path, nested.refs) == ("s3", "bucket/prefix", {"snapshot": "ABC"})
    for bad in (
        "icechunk:///repo?colour=red",  # unknown parameter
        "icechunk:///repo?endpoint_url=http://x",  # S3 option on a local repository
        "icechunk://gs://bucket/prefix",  # unsupported storage
        "icechunk+s3://?region=x",  # no bucket
        "icechunk:///repo?tag=a&tag=b",
    ):
        with pytest.raises(zc.InvalidURLError):
            parse_url(bad)
    with pytest.raises(zc.InvalidURLError, match="at most one"):
        IcechunkStore("icechunk:///repo?tag=v1", branch="dev")


def test_open_store_dispatches_and_root_uri_has_no_secrets(tmp_path):
    store = zc.open_store(_url(tmp_path / "repo"))
    assert isinstance(store, IcechunkStore)
    assert store.root_uri == f"icechunk://{tmp_path / 'repo'}"
    assert store.read_only is False
    s3 = zc.open_store(
        "icechunk+s3://bkt/coll?endpoint_url=http://127.0.0.1:1&access_key_id=AK"
        "&secret_access_key=TOPSECRET&tag=v2"
    )
    assert isinstance(s3, IcechunkStore)
    assert s3.read_only is True  # a tag is a version of the past
    assert "TOPSECRET" not in s3.root_uri and "AK" not in s3.root_uri
    assert s3.root_uri.startswith("icechunk+s3://bkt/coll?endpoint_url=")
    assert s3.root_uri.endswith("tag=v2")
    assert not (tmp_path / "repo").exists()


def test_pickle_round_trip(tmp_path, make_altimetry, monthly):
    ds = make_altimetry("2024-01-01", 2)
    col = _create(_url(tmp_path / "repo"), ds, monthly)
    col.insert(ds)
    clone = pickle.loads(pickle.dumps(col.store))
    assert clone.tip() == col.store.tip()
    assert list(zc.Collection.open(clone).partitions()) == ["year=2024/month=01"]


# -- missing repositories and the on-disk layout --------------------------------------------------


@pytest.mark.parametrize("mode", ["r", "rw"])
def test_open_missing_repository_creates_nothing(tmp_path, mode):
    url = _url(tmp_path / "missing")
    with pytest.raises(zc.CollectionNotFoundError):
        zc.open_collection(url, mode=mode)
    assert not (tmp_path / "missing").exists()
    assert list(zc.open_store(url, read_only=True).list_prefix("")) == []


def test_repository_without_collection_is_not_a_collection(tmp_path):
    repo = ic.Repository.create(ic.local_filesystem_storage(str(tmp_path / "repo")))
    tip = repo.lookup_branch("main")
    for mode in ("r", "rw"):
        with pytest.raises(zc.CollectionNotFoundError):
            zc.open_collection(_url(tmp_path / "repo"), mode=mode)
    assert repo.lookup_branch("main") == tip
    assert len(list(repo.ancestry(branch="main"))) == 1


def test_meta_files_are_payload_attributes_of_zc_meta_groups(tmp_path, make_altimetry, monthly):
    import zarr

    ds = make_altimetry("2024-01-01", 40)
    col = _create(_url(tmp_path / "repo"), ds, monthly, catalog=True)
    col.insert(ds)
    store = col.store
    keys = set(store.list_prefix(""))
    assert "_zcollection.json" not in keys and "_catalog/state.json" not in keys
    assert f"{meta_group('_catalog/state.json')}/zarr.json" in keys
    assert meta_group("_catalog/state.json") == "_zc_meta/_catalog__state.json"
    root = zarr.open_group(store.zarr_store(), mode="r")
    config = json.loads(root["_zc_meta/_zcollection.json"].attrs["_payload"])
    assert config["axis"] == "time" and config["format_version"] == 1
    state = json.loads(root["_zc_meta/_catalog__state.json"].attrs["_payload"])
    assert state["paths"] == ["year=2024/month=01", "year=2024/month=02"]
    # the byte-level API reaches meta files too
    assert json.loads(store.read_bytes("_zcollection.json") or b"") == config
    assert store.exists("_catalog/state.json") and not store.exists("_zcollection_view.json")


def test_store_built_from_a_repository(make_altimetry, monthly):
    repo = ic.Repository.create(ic.in_memory_storage())
    store = IcechunkStore(repo)
    ds = make_altimetry("2024-01-30", 4)
    col = zc.create_collection(store, schema=ds.schema, axis="time", partitioning=monthly)
    assert col.insert(ds) == ["year=2024/month=01", "year=2024/month=02"]
    reopened = zc.open_collection(IcechunkStore(repo, read_only=True))
    result = reopened.query()
    assert result is not None
    numpy.testing.assert_array_equal(result["ssh"].to_numpy(), ds["ssh"].to_numpy())
    assert [i.message for i in repo.ancestry(branch="main")][:2] == [
        "insert",
        "create collection",
    ]


# -- transactions ------------------------------------------------------------------------------


def test_every_mutation_is_exactly_one_commit(tmp_path, make_altimetry, monthly):
    url = _url(tmp_path / "repo")
    ds = make_altimetry("2024-01-01", 70)
    col = _create(url, ds, monthly, catalog=True)
    store = col.store
    assert _history(store) == ["create collection", "Repository initialized"]

    def one_commit(call: Callable[[], Any], message: str) -> Any:
        before = store.tip()
        n = len(_history(store))
        result = call()
        history = _history(store)
        assert len(history) == n + 1 and history[0] == message
        repo = store.repository()
        assert repo is not None
        assert repo.lookup_snapshot(store.tip()).parent_id == before  # type: ignore[arg-type]
        return result

    assert len(one_commit(lambda: col.insert(ds), "insert")) == 3
    one_commit(lambda: col.update(lambda p: p, filters="month == 2"), "update")
    one_commit(lambda: col.drop_partitions(filters="month == 3"), "drop partitions")
    one_commit(
        lambda: store.write_bytes("_catalog/state.json", b'{"paths": []}'),
        "write _catalog/state.json",
    )
    assert one_commit(col.repair_catalog, "repair catalog") == [
        "year=2024/month=01",
        "year=2024/month=02",
    ]
    # a call that changes nothing adds no snapshot
    n = len(_history(store))
    assert col.drop_partitions(filters="year == 1999") == []
    assert col.update(lambda p: p, filters="year == 1999") == []
    assert len(_history(store)) == n
    one_commit(
        lambda: zc.create_collection(
            url, schema=ds.schema, axis="time", partitioning=monthly, overwrite=True
        ),
        "create collection",
    )


def test_failure_in_the_middle_of_an_insert_leaves_the_branch_as_it_was(
    tmp_path, make_altimetry, monthly, monkeypatch
):
    from zcollection.collection import collection as collection_module

    ds = make_altimetry("2024-01-01", 70)
    col = _create(_url(tmp_path / "repo"), ds, monthly, catalog=True)
    col.insert(ds)
    store = col.store
    tip, before = store.tip(), col.query()
    zc.config["partition.concurrency"] = 1  # partitions one after the other
    real_write_array = collection_module.write_array
    written: list[str] = []

    async def write_array_then_fail(zs, path, *args, **kwargs):
        if len(written) == 3:  # the first partition is rewritten, the second half-way
            raise RuntimeError("disk on fire")
        written.append(path)
        return await real_write_array(zs, path, *args, **kwargs)

    monkeypatch.setattr(collection_module, "write_array", write_array_then_fail)
    with pytest.raises(RuntimeError, match="disk on fire"):
        col.insert(make_altimetry("2024-01-01", 70, seed=9))
    monkeypatch.undo()
    assert [p.rsplit("/", 1)[0] for p in written] == ["year=2024/month=01"] * 2 + [
        "year=2024/month=02"
    ]
    assert store.tip() == tip
    after = zc.open_collection(_url(tmp_path / "repo")).query()
    assert before is not None and after is not None
    for name in ("time", "ssh", "x_ac"):
        numpy.testing.assert_array_equal(after[name].to_numpy(), before[name].to_numpy())
    # the store stays usable
    assert col.insert(make_altimetry("2024-05-01", 1)) == ["year=2024/month=05"]


def test_store_level_writes_are_one_commit_each(tmp_path, make_altimetry, monthly):
    ds = make_altimetry("2024-01-01", 2)
    store = _create(_url(tmp_path / "repo"), ds, monthly).store
    n = len(_history(store))
    store.write_bytes("_catalog/state.json", b'{"format_version": 1, "paths": []}')
    store.delete_prefix("_immutable")
    assert _history(store)[:2] == ["delete _immutable", "write _catalog/state.json"]
    assert len(_history(store)) == n + 2
    with pytest.raises(zc.StoreError):
        store.write_bytes("_zcollection.json", b"\xff\xfe")  # meta files are UTF-8 text
    assert len(_history(store)) == n + 2


# -- versions ------------------------------------------------------------------------------------


def test_tags_snapshots_and_branches_show_the_past(tmp_path, make_altimetry, monthly):
    url = _url(tmp_path / "repo")
    first = make_altimetry("2024-01-01", 3)
    col = _create(url, first, monthly)
    col.insert(first)
    store = col.store
    repo = store.repository()
    assert repo is not None
    old = store.tip()
    assert old is not None
    repo.create_tag("v1", old)
    repo.create_branch("dev", old)
    col.insert(make_altimetry("2024-02-01", 3))
    col.insert(make_altimetry("2024-01-01", 3, seed=5))  # replaces January
    assert list(col.partitions()) == ["year=2024/month=01", "year=2024/month=02"]

    pinned = [
        zc.open_collection(_url(tmp_path / "repo", tag="v1")),
        zc.open_collection(_url(tmp_path / "repo", snapshot=old)),
        zc.open_collection(_url(tmp_path / "repo", branch="dev")),
        zc.open_collection(IcechunkStore(repo, tag="v1")),
        zc.open_collection(IcechunkStore(tmp_path / "repo", snapshot=old)),
    ]
    for version in pinned:
        _same_data(version, {"year=2024/month=01": first})

    # writes on a tag or a snapshot are refused, even when opened "rw"
    for ref in ({"tag": "v1"}, {"snapshot": old}):
        writable = zc.open_collection(_url(tmp_path / "repo", **ref), mode="rw")
        assert writable.read_only is True
        with pytest.raises(zc.ReadOnlyError):
            writable.insert(first)
        with pytest.raises(zc.ReadOnlyError):
            zc.create_collection(
                _url(tmp_path / "repo", **ref),
                schema=first.schema,
                axis="time",
                partitioning=monthly,
                overwrite=True,
            )
    with pytest.raises(zc.ReadOnlyError):
        IcechunkStore(repo, tag="v1").write_bytes("_catalog/state.json", b"{}")

    # a writable branch other than main takes its own commits
    dev = zc.open_collection(_url(tmp_path / "repo", branch="dev"), mode="rw")
    dev.insert(make_altimetry("2024-03-01", 1))
    assert list(dev.partitions()) == ["year=2024/month=01", "year=2024/month=03"]
    assert list(col.partitions()) == ["year=2024/month=01", "year=2024/month=02"]
    with pytest.raises(zc.StoreError, match="cannot resolve"):
        zc.open_collection(_url(tmp_path / "repo", tag="nope"))


# -- concurrent writers in one process (deterministic interleaving) -------------------------------


class _GatedStore(IcechunkStore):
    """Holds each commit until ``gate`` lets it through."""

    def __init__(self, *args: Any, gate: Callable[[], Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = gate

    async def new_session_async(self) -> IcechunkSession:
        session = await super().new_session_async()
        commit = session.commit

        async def gated(message: str) -> None:
            await self.gate()
            await commit(message)

        session.commit = gated  # type: ignore[method-assign]
        return session


def _race(url: str, first: zc.Dataset, second: zc.Dataset) -> list[Any]:
    """Insert ``first`` and ``second`` from two handles whose sessions overlap; ``first``
    commits first. Return both results (paths or exception)."""

    async def scenario() -> list[Any]:
        both = asyncio.Event()
        first_done = asyncio.Event()
        waiting = [0]

        async def arrive() -> None:
            waiting[0] += 1
            if waiting[0] == 2:
                both.set()
            await both.wait()

        async def gate_second() -> None:
            await arrive()
            await first_done.wait()

        a = await zc.Collection.open_async(_GatedStore(url, gate=arrive))
        b = await zc.Collection.open_async(_GatedStore(url, gate=gate_second))

        async def insert_first() -> Any:
            try:
                return await a.insert_async(first)
            finally:
                first_done.set()

        return list(
            await asyncio.gather(insert_first(), b.insert_async(second), return_exceptions=True)
        )

    return asyncio.run(scenario())


def test_concurrent_writers_in_process(tmp_path, make_altimetry, monthly):
    url = _url(tmp_path / "repo")
    base = make_altimetry("2024-01-01", 3)
    col = _create(url, base, monthly)
    col.insert(base)
    feb, mar = make_altimetry("2024-02-01", 3, seed=1), make_altimetry("2024-03-01", 3, seed=2)
    assert _race(url, feb, mar) == [["year=2024/month=02"], ["year=2024/month=03"]]
    _same_data(
        col, {"year=2024/month=01": base, "year=2024/month=02": feb, "year=2024/month=03": mar}
    )
    assert _history(col.store)[:2] == ["insert", "insert"]

    tip = col.store.tip()
    apr1, apr2 = make_altimetry("2024-04-01", 2, seed=3), make_altimetry("2024-04-10", 2, seed=4)
    won, lost = _race(url, apr1, apr2)
    assert won == ["year=2024/month=04"]
    assert isinstance(lost, zc.ConflictError)
    assert "conflicts with a concurrent commit" in str(lost) and "month=04" in str(lost)
    repo = col.store.repository()
    assert repo is not None
    assert repo.lookup_snapshot(col.store.tip()).parent_id == tip  # only the winner landed
    _same_data(
        col,
        {
            "year=2024/month=01": base,
            "year=2024/month=02": feb,
            "year=2024/month=03": mar,
            "year=2024/month=04": apr1,
        },
    )


# -- crash in the middle of a large insert --------------------------------------------------------

_CRASH_CHILD = """
import sys
import numpy
import zcollection as zc

url, days = sys.argv[1], int(sys.argv[2])
col = zc.open_collection(url, mode="rw")
zc.config["partition.concurrency"] = 1
schema = col.schema
n = days * 96
time = numpy.datetime64("2023-01-01", "ns") + numpy.arange(n) * numpy.timedelta64(15 * 60, "s")
ssh = numpy.random.default_rng(1).normal(size=(n, 4)).astype("float32")
ds = zc.Dataset(schema, [
    zc.Variable(schema.variables["time"], time),
    zc.Variable(schema.variables["ssh"], ssh),
    zc.Variable(schema.variables["x_ac"], numpy.arange(4, dtype="int16")),
])
print("inserting", flush=True)
col.insert(ds)
print("done", flush=True)
"""


def _count_files(folder: Path) -> int:
    try:
        return sum(1 for _ in os.scandir(folder))
    except FileNotFoundError:
        return 0


def test_killed_insert_leaves_the_collection_as_it_was(tmp_path, make_altimetry, monthly):
    url = _url(tmp_path / "repo")
    base = make_altimetry("2024-01-01", 40)
    col = _create(url, base, monthly, catalog=True)
    col.insert(base)
    tip = col.store.tip()
    before = {path: col.query(filters=f"month == {int(path[-2:])}") for path in col.partitions()}
    chunks = tmp_path / "repo" / "chunks"
    initial = _count_files(chunks)
    # a year and a half at 96 rows a day: ~800 chunks of ssh to write, one partition at a time
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASH_CHILD, url, "540"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while _count_files(chunks) < initial + 120:
            assert child.poll() is None, "the insert ended before it could be killed"
            assert time.monotonic() < deadline, "the child wrote no chunks"
            time.sleep(0.005)
        assert child.poll() is None, "the insert ended before it could be killed"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert child.stdout is not None and b"done" not in child.stdout.read()
    assert _count_files(chunks) >= initial + 120  # it really was writing

    reopened = zc.open_collection(url, mode="rw")
    assert reopened.store.tip() == tip  # type: ignore[attr-defined]
    assert list(reopened.partitions()) == list(before)
    for path, ds in before.items():
        got = reopened.query(filters=f"month == {int(path[-2:])}")
        assert ds is not None and got is not None
        for name in ("time", "ssh", "x_ac"):
            numpy.testing.assert_array_equal(got[name].to_numpy(), ds[name].to_numpy())
    # and the repository takes new writes
    assert reopened.insert(make_altimetry("2024-06-01", 1)) == ["year=2024/month=06"]


# -- two writers in two processes on S3 (moto) ----------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a free port) for this module's tests."""
    pytest.importorskip("moto")
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket="icechunk-tests")
    yield endpoint
    server.stop()


@pytest.fixture
def s3_url(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh repository URL on the moto server; credentials in the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    prefix = uuid.uuid4().hex[:12]
    return f"icechunk+s3://icechunk-tests/{prefix}?endpoint_url={moto_endpoint}&region=us-east-1"


_WRITER_CHILD = """
import asyncio, json, os, sys, time
import numpy
import zcollection as zc
from zcollection.store.icechunk import IcechunkStore

url, me, start, seed, gates, role = sys.argv[1:]


def touch(name):
    open(os.path.join(gates, name), "w").close()


def wait_for(*names):
    deadline = time.monotonic() + 60
    while not all(os.path.exists(os.path.join(gates, n)) for n in names):
        if time.monotonic() > deadline:
            sys.exit(9)
        time.sleep(0.01)


class Gated(IcechunkStore):
    async def new_session_async(self):
        session = await super().new_session_async()
        commit = session.commit

        async def gated(message):
            touch("ready-" + me)
            await asyncio.to_thread(wait_for, "ready-first", "ready-second")
            if role == "second":
                await asyncio.to_thread(wait_for, "done-first")
            try:
                await commit(message)
            finally:
                if role == "first":
                    touch("done-first")

        session.commit = gated
        return session


col = zc.Collection.open(Gated(url))
schema = col.schema
n = 2 * 4
time_ = numpy.datetime64(start, "ns") + numpy.arange(n) * numpy.timedelta64(6 * 3600, "s")
ssh = numpy.random.default_rng(int(seed)).normal(size=(n, 4)).astype("float32")
ds = zc.Dataset(schema, [
    zc.Variable(schema.variables["time"], time_),
    zc.Variable(schema.variables["ssh"], ssh),
    zc.Variable(schema.variables["x_ac"], numpy.arange(4, dtype="int16")),
])
try:
    written = col.insert(ds)
except zc.ConflictError as exc:
    print(json.dumps({"conflict": str(exc)}), flush=True)
    sys.exit(3)
print(json.dumps({"written": written}), flush=True)
"""


def _two_writers(url: str, tmp_path: Path, first: tuple[str, int], second: tuple[str, int]):
    gates = tmp_path / uuid.uuid4().hex[:8]
    gates.mkdir()
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER_CHILD, url, role, start, str(seed), str(gates), role],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "ICECHUNK_LOG": "error"},
        )
        for role, (start, seed) in (("first", first), ("second", second))
    ]
    results = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode in (0, 3), err.decode(errors="replace")[-3000:]
        results.append((child.returncode, json.loads(out.decode().strip().splitlines()[-1])))
    return results


def test_two_processes_on_s3_different_partitions_both_land(s3_url, tmp_path, make_altimetry):
    monthly = zc.partitioning.Date("time", resolution="M")
    base = make_altimetry("2024-01-01", 2)
    col = _create(s3_url, base, monthly)
    col.insert(base)
    tip = col.store.tip()
    results = _two_writers(s3_url, tmp_path, ("2024-02-01", 1), ("2024-03-01", 2))
    assert results == [
        (0, {"written": ["year=2024/month=02"]}),
        (0, {"written": ["year=2024/month=03"]}),
    ]
    _same_data(
        zc.open_collection(s3_url),
        {
            "year=2024/month=01": base,
            "year=2024/month=02": make_altimetry("2024-02-01", 2, seed=1),
            "year=2024/month=03": make_altimetry("2024-03-01", 2, seed=2),
        },
    )
    repo = col.store.repository()
    assert repo is not None
    ancestry = list(repo.ancestry(branch="main"))
    assert [i.message for i in ancestry[:2]] == ["insert", "insert"]
    assert ancestry[2].id == tip  # two commits, one rebased over the other


def test_two_processes_on_s3_same_partition_loser_gets_conflict(s3_url, tmp_path, make_altimetry):
    monthly = zc.partitioning.Date("time", resolution="M")
    base = make_altimetry("2024-01-01", 2)
    col = _create(s3_url, base, monthly)
    col.insert(base)
    tip = col.store.tip()
    (code_a, out_a), (code_b, out_b) = _two_writers(
        s3_url, tmp_path, ("2024-02-01", 1), ("2024-02-01", 2)
    )
    assert (code_a, out_a) == (0, {"written": ["year=2024/month=02"]})
    assert code_b == 3 and "conflicts with a concurrent commit" in out_b["conflict"]
    winner = make_altimetry("2024-02-01", 2, seed=1)
    _same_data(
        zc.open_collection(s3_url), {"year=2024/month=01": base, "year=2024/month=02": winner}
    )
    repo = col.store.repository()
    assert repo is not None
    assert repo.lookup_snapshot(col.store.tip()).parent_id == tip  # exactly one commit landed
    # nothing silently lost: the loser knows, and its retry lands on top of the winner
    loser = make_altimetry("2024-02-01", 2, seed=2)
    zc.open_collection(s3_url, mode="rw").insert(loser, merge="concat")
    merged = zc.open_collection(s3_url).query(filters="month == 2")
    assert merged is not None
    numpy.testing.assert_array_equal(
        merged["ssh"].to_numpy(),
        numpy.concatenate([winner["ssh"].to_numpy(), loser["ssh"].to_numpy()]),
    )


def test_s3_url_forms_and_versions(s3_url, moto_endpoint, make_altimetry):
    monthly = zc.partitioning.Date("time", resolution="M")
    first = make_altimetry("2024-01-01", 2)
    col = _create(s3_url, first, monthly)
    col.insert(first)
    snapshot = col.store.tip()
    col.insert(make_altimetry("2024-02-01", 2))
    nested = s3_url.replace("icechunk+s3://", "icechunk://s3://")
    assert list(zc.open_collection(nested).partitions()) == [
        "year=2024/month=01",
        "year=2024/month=02",
    ]
    old = zc.open_collection(f"{nested}&snapshot={snapshot}", mode="rw")
    assert old.read_only is True
    _same_data(old, {"year=2024/month=01": first})
    # explicit credentials in storage_options instead of the environment
    bucket_prefix = s3_url.split("://", 1)[1].split("?", 1)[0]
    store = zc.open_store(
        f"icechunk+s3://{bucket_prefix}",
        read_only=True,
        storage_options={
            "endpoint_url": moto_endpoint,
            "region": "us-east-1",
            "access_key_id": "testing",
            "secret_access_key": "testing",
        },
    )
    assert store.tip() == col.store.tip()  # type: ignore[attr-defined]
    missing = s3_url.replace(bucket_prefix, "icechunk-tests/nothing-here")
    with pytest.raises(zc.CollectionNotFoundError):
        zc.open_collection(missing, mode="rw")
    assert list(zc.open_store(missing, read_only=True).list_prefix("")) == []


def test_store_built_from_a_storage_pickles_once_open(tmp_path, make_altimetry, monthly):
    store = IcechunkStore(ic.local_filesystem_storage(str(tmp_path / "repo")))
    with pytest.raises(TypeError, match="pickles once"):
        pickle.dumps(store)
    ds = make_altimetry("2024-01-01", 2)
    zc.create_collection(store, schema=ds.schema, axis="time", partitioning=monthly).insert(ds)
    clone = pickle.loads(pickle.dumps(store))
    assert clone.tip() == store.tip()
    assert list(zc.open_collection(clone).partitions()) == ["year=2024/month=01"]
