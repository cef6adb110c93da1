"""Unit tests of the store layer: open_store URL dispatch and the byte-level Store surface of the
local and in-memory back-ends."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zcollection as zc
from hypothesis import given, settings
from hypothesis import strategies as st
from zcollection._sync import run_sync
from zcollection.errors import InvalidURLError, ReadOnlyError, StoreError

# -- open_store ---------------------------------------------------------------------------------


def _name() -> str:
    return f"test-stores-{uuid.uuid4().hex}"


@pytest.fixture
def named_memory() -> Iterator[str]:
    """A unique ``memory://`` URL, forgotten after the test."""
    name = _name()
    yield f"memory://{name}"
    zc.MemoryStore.forget(name)


def test_bare_path_file_url_and_pathlib_open_a_local_store(tmp_path: Path) -> None:
    for spec in (str(tmp_path / "a"), f"file://{tmp_path / 'a'}", tmp_path / "a"):
        store = zc.open_store(spec)
        assert isinstance(store, zc.LocalStore)
        assert store.path == tmp_path / "a"
        assert store.root_uri == (tmp_path / "a").as_uri()
        assert store.read_only is False
    # all three spellings are the same place
    zc.open_store(str(tmp_path / "a")).write_bytes("k", b"1")
    assert zc.open_store(f"file://{tmp_path / 'a'}").read_bytes("k") == b"1"
    assert zc.open_store(tmp_path / "a").read_bytes("k") == b"1"
    assert (tmp_path / "a" / "k").read_bytes() == b"1"


def test_file_url_is_percent_decoded(tmp_path: Path) -> None:
    store = zc.open_store(f"file://{tmp_path}/with%20space")
    assert isinstance(store, zc.LocalStore)
    assert store.path == tmp_path / "with space"
    assert isinstance(zc.open_store(f"file://localhost{tmp_path}"), zc.LocalStore)


def test_relative_bare_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = zc.open_store("rel/dir")
    assert isinstance(store, zc.LocalStore)
    assert store.path == tmp_path / "rel" / "dir"


def test_open_store_passes_a_store_through() -> None:
    store = zc.MemoryStore()
    assert zc.open_store(store) is store


def test_anonymous_memory_stores_are_independent() -> None:
    a = zc.open_store("memory://")
    b = zc.open_store("memory://")
    assert isinstance(a, zc.MemoryStore)
    a.write_bytes("k", b"a")
    assert b.read_bytes("k") is None
    assert b.exists("k") is False
    assert list(b.list_prefix("")) == []
    c = zc.MemoryStore()
    assert c.read_bytes("k") is None


def test_named_memory_store_is_shared_by_url(named_memory: str) -> None:
    first = zc.open_store(named_memory)
    first.write_bytes("dir/k", b"shared")
    again = zc.open_store(named_memory)
    assert again is not first
    assert again.read_bytes("dir/k") == b"shared"
    assert zc.open_store(named_memory + "/").read_bytes("dir/k") == b"shared"
    assert first.root_uri == named_memory
    # writes made through either are seen by the other
    again.write_bytes("other", b"2")
    assert first.read_bytes("other") == b"2"
    # another name is another store
    assert zc.open_store(f"memory://{_name()}").read_bytes("dir/k") is None


def test_forgotten_memory_store_starts_empty() -> None:
    name = _name()
    zc.open_store(f"memory://{name}").write_bytes("k", b"1")
    zc.MemoryStore.forget(name)
    assert zc.open_store(f"memory://{name}").read_bytes("k") is None
    zc.MemoryStore.forget(name)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "a\x00b",
        "memory://x\x00y",
        "ftp://host/x",
        "bogus://x",
        "file://remote-host/data",
        "file://",
    ],
)
def test_invalid_urls(url: str) -> None:
    with pytest.raises(InvalidURLError) as info:
        zc.open_store(url)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, zc.ZCollectionError)


def test_not_a_url_at_all() -> None:
    with pytest.raises(InvalidURLError):
        zc.open_store(42)  # type: ignore[arg-type]


# -- the Store surface, on both back-ends ---------------------------------------------------


StoreFactory = Callable[..., zc.Store]


@pytest.fixture(params=["memory", "local"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """A factory of stores that all open the same place (``read_only`` as asked)."""
    if request.param == "memory":
        name = _name()
        yield lambda read_only=False: zc.open_store(f"memory://{name}", read_only=read_only)
        zc.MemoryStore.forget(name)
    else:
        root = tmp_path / "store"
        yield lambda read_only=False: zc.open_store(str(root), read_only=read_only)


def _fill(store: zc.Store) -> None:
    store.write_bytes("zarr.json", b"{}")
    store.write_bytes("a/zarr.json", b"{1}")
    store.write_bytes("a/b/c/0", b"\x00\x01")
    store.write_bytes("a/d", b"d")
    store.write_bytes("ab/x", b"x")
    store.write_bytes("year=2024/month=03/zarr.json", b"p")


def test_read_write_exists(make_store: StoreFactory) -> None:
    store = make_store()
    assert store.read_bytes("k") is None
    assert store.exists("k") is False
    store.write_bytes("k", b"value")
    assert store.read_bytes("k") == b"value"
    assert store.exists("k") is True
    store.write_bytes("k", b"new")  # overwrite
    assert store.read_bytes("k") == b"new"
    store.write_bytes("deep/er/key", b"")
    assert store.read_bytes("deep/er/key") == b""
    assert store.exists("deep/er/key") is True
    assert store.exists("deep") is False  # a prefix is not a key
    assert store.read_bytes("deep") is None


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=4096))
def test_bytes_round_trip(data: bytes) -> None:
    store = zc.MemoryStore()
    store.write_bytes("a/b", data)
    assert store.read_bytes("a/b") == data


def test_list_dir(make_store: StoreFactory) -> None:
    store = make_store()
    _fill(store)
    assert list(store.list_dir("")) == ["a", "ab", "year=2024", "zarr.json"]
    assert list(store.list_dir("a")) == ["b", "d", "zarr.json"]
    assert list(store.list_dir("/a/")) == ["b", "d", "zarr.json"]
    assert list(store.list_dir("year=2024")) == ["month=03"]
    assert list(store.list_dir("a/b/c")) == ["0"]
    assert list(store.list_dir("nope")) == []
    assert list(store.list_dir("a/d")) == []  # a key has no children


def test_list_prefix(make_store: StoreFactory) -> None:
    store = make_store()
    _fill(store)
    assert list(store.list_prefix("")) == [
        "a/b/c/0",
        "a/d",
        "a/zarr.json",
        "ab/x",
        "year=2024/month=03/zarr.json",
        "zarr.json",
    ]
    # whole path segments only: "a" does not list "ab/x"
    assert list(store.list_prefix("a")) == ["a/b/c/0", "a/d", "a/zarr.json"]
    assert list(store.list_prefix("a/")) == ["a/b/c/0", "a/d", "a/zarr.json"]
    assert list(store.list_prefix("a/b")) == ["a/b/c/0"]
    assert list(store.list_prefix("nope")) == []
    assert list(store.list_prefix("a/d")) == []  # a key is not under itself


def test_delete_prefix(make_store: StoreFactory) -> None:
    store = make_store()
    _fill(store)
    store.delete_prefix("a")
    assert list(store.list_prefix("")) == [
        "ab/x",
        "year=2024/month=03/zarr.json",
        "zarr.json",
    ]
    assert store.read_bytes("a/d") is None
    assert list(store.list_dir("a")) == []
    store.delete_prefix("nope")  # a missing prefix is a no-op
    store.delete_prefix("zarr.json")  # nothing lies under a key: a no-op too
    assert store.read_bytes("zarr.json") == b"{}"
    store.delete_prefix("/year=2024/")
    assert list(store.list_prefix("")) == ["ab/x", "zarr.json"]
    store.delete_prefix("")  # everything
    assert list(store.list_prefix("")) == []
    assert list(store.list_dir("")) == []
    # the store is still usable
    store.write_bytes("k", b"1")
    assert store.read_bytes("k") == b"1"


def test_read_only_store_refuses_writes(make_store: StoreFactory) -> None:
    make_store().write_bytes("k", b"1")
    store = make_store(read_only=True)
    assert store.read_only is True
    assert "read_only=True" in repr(store)
    assert store.read_bytes("k") == b"1"
    assert store.exists("k")
    assert list(store.list_dir("")) == ["k"]
    assert list(store.list_prefix("")) == ["k"]
    with pytest.raises(ReadOnlyError):
        store.write_bytes("k", b"2")
    with pytest.raises(ReadOnlyError):
        store.write_bytes("new", b"2")
    with pytest.raises(ReadOnlyError):
        store.delete_prefix("")
    with pytest.raises(ReadOnlyError), store.session():
        pass
    assert make_store().read_bytes("k") == b"1"
    assert make_store().read_bytes("new") is None


def test_session_is_a_context_manager(make_store: StoreFactory) -> None:
    store = make_store()
    with store.session() as session:
        assert isinstance(session, zc.store.StoreSession)
        assert session.store is store
    # writes made through the session's zarr store land in the store
    with store.session() as session:
        run_sync(session.write_bytes_async("s/k", b"through session"))
        assert run_sync(session.read_bytes_async("s/k")) == b"through session"
        assert run_sync(session.exists_async("s/k")) is True
        assert run_sync(session.list_dir_async("s")) == ["k"]
    assert store.read_bytes("s/k") == b"through session"
    # an error inside the block propagates
    with pytest.raises(KeyError, match="boom"), store.session():
        raise KeyError("boom")


# -- LocalStore specifics -----------------------------------------------------------------------


def test_local_store_on_a_missing_directory_creates_nothing(tmp_path: Path) -> None:
    root = tmp_path / "missing" / "deeper"
    store = zc.open_store(str(root))
    assert store.read_bytes("zarr.json") is None
    assert store.exists("zarr.json") is False
    assert list(store.list_dir("")) == []
    assert list(store.list_dir("a/b")) == []
    assert list(store.list_prefix("")) == []
    store.delete_prefix("a")
    store.delete_prefix("")
    with store.session():
        pass
    assert not (tmp_path / "missing").exists()
    # the first write creates the directory
    store.write_bytes("a/k", b"1")
    assert (root / "a" / "k").read_bytes() == b"1"


def test_read_only_local_store_on_a_missing_directory(tmp_path: Path) -> None:
    store = zc.open_store(tmp_path / "ro", read_only=True)
    with pytest.raises(ReadOnlyError):
        store.write_bytes("k", b"1")
    assert not (tmp_path / "ro").exists()


def test_local_store_io_failure_is_a_store_error(tmp_path: Path) -> None:
    store = zc.open_store(tmp_path / "s")
    store.write_bytes("a/b", b"1")
    with pytest.raises(StoreError):
        store.write_bytes("a", b"a directory is in the way")
    assert store.read_bytes("a/b") == b"1"


def test_local_store_sees_files_written_outside(tmp_path: Path) -> None:
    (tmp_path / "x" / "y").mkdir(parents=True)
    (tmp_path / "x" / "y" / "z.json").write_bytes(b"{}")
    store = zc.open_store(tmp_path)
    assert store.read_bytes("x/y/z.json") == b"{}"
    assert list(store.list_prefix("x")) == ["x/y/z.json"]
    assert list(store.list_dir("x")) == ["y"]
