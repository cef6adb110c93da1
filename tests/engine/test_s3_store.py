"""S3 through obstore (on the moto server of tests/backends/s3.py): URL forms and options,
errors, read-only stores, listing and deleting prefixes."""

from __future__ import annotations

import os
import pickle
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy
import pytest
import zcollection as zc

S3 = sys.modules["_zc_test_backend_s3"]  # tests/backends/s3.py, loaded by tests/conftest.py
if "s3" not in S3.FACTORIES:
    pytest.skip("obstore, moto[server] and boto3 are needed", allow_module_level=True)

import obstore  # noqa: E402
import obstore.store  # noqa: E402
from zcollection.store.objectstore import ObjectStore  # noqa: E402


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every AWS_* variable, so only the URL and storage_options configure obstore."""
    for name in list(os.environ):
        if name.upper().startswith("AWS_"):
            monkeypatch.delenv(name)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point obstore at the moto server through the environment."""
    S3.use_environment(monkeypatch)


@pytest.fixture
def bucket() -> str:
    return S3.new_bucket()


def _keys(bucket: str) -> list[str]:
    listing = S3.s3_client().list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def _options() -> dict[str, object]:
    return {
        "endpoint_url": S3.endpoint(),
        "aws_access_key_id": S3.ACCESS_KEY,
        "aws_secret_access_key": S3.SECRET_KEY,
        "region_name": S3.REGION,
        "allow_http": True,
    }


def _schema() -> zc.DatasetSchema:
    return (
        zc.Schema()
        .with_dimension("n")
        .with_variable("cycle", dtype="int32", dimensions=("n",))
        .build()
    )


def _round_trip(url: str | zc.Store) -> None:
    schema = _schema()
    col = zc.create_collection(
        url,
        schema=schema,
        axis="n",
        partitioning=zc.partitioning.Sequence(("cycle",), dimension="n"),
    )
    data = zc.Dataset(
        schema, [zc.Variable(schema.variables["cycle"], numpy.array([3, 1, 3], dtype="int32"))]
    )
    assert col.insert(data) == ["cycle=1", "cycle=3"]
    assert list(zc.open_collection(url).partitions()) == ["cycle=1", "cycle=3"]


def _assert_one_line_store_error(info: pytest.ExceptionInfo[BaseException]) -> str:
    assert type(info.value) is zc.StoreError
    message = str(info.value)
    assert "\n" not in message and len(message) < 600
    return message


# -- URL forms and options ---------------------------------------------------------------------


def test_plain_url_takes_its_options_from_the_environment(env, bucket):
    store = zc.open_store(f"s3://{bucket}/coll/")
    assert isinstance(store, ObjectStore)
    assert store.root_uri == f"s3://{bucket}/coll"
    assert isinstance(store.obstore, obstore.store.S3Store)
    store.write_bytes("a/zarr.json", b"{}")
    assert store.read_bytes("a/zarr.json") == b"{}"
    assert store.read_bytes("a/missing") is None
    assert store.exists("a/zarr.json") and not store.exists("a/missing")
    assert _keys(bucket) == ["coll/a/zarr.json"]
    _round_trip(f"s3://{bucket}/col2")


def test_url_query_carries_the_options_without_environment(no_env, bucket):
    url = S3.query_url(bucket, "coll")
    store = zc.open_store(url)
    # the endpoint and the region stay in root_uri, the credentials never do
    assert store.root_uri.startswith(f"s3://{bucket}/coll?endpoint_url=http://127.0.0.1:")
    assert "region=us-east-1" in store.root_uri
    assert S3.SECRET_KEY not in store.root_uri and S3.ACCESS_KEY not in store.root_uri
    assert S3.SECRET_KEY not in repr(store)
    _round_trip(url)
    assert "coll/_zcollection.json" in _keys(bucket)


def test_storage_options_with_fsspec_and_boto_spellings(no_env, bucket):
    store = zc.open_store(f"s3://{bucket}/coll", storage_options=_options())
    store.write_bytes("k", b"1")
    fsspec_style = {
        "key": S3.ACCESS_KEY,
        "secret": S3.SECRET_KEY,
        "client_kwargs": {"endpoint_url": S3.endpoint(), "region_name": S3.REGION},
        "client_options": {"allow_http": "true"},
    }
    again = zc.open_store(f"s3://{bucket}/coll", storage_options=fsspec_style)
    assert again.read_bytes("k") == b"1"
    assert _keys(bucket) == ["coll/k"]


def test_storage_options_override_the_url_query(no_env, bucket):
    url = f"s3://{bucket}/coll?endpoint_url=http://127.0.0.1:{_closed_port()}&max_retries=0"
    store = zc.open_store(url, storage_options=_options())
    store.write_bytes("k", b"1")
    assert _keys(bucket) == ["coll/k"]


def test_explicit_client_options_keep_allow_http_from_the_environment(env, bucket):
    store = zc.open_store(f"s3://{bucket}", storage_options={"timeout": 30, "user_agent": "zc"})
    store.write_bytes("k", b"1")
    assert store.read_bytes("k") == b"1"
    assert store.root_uri == f"s3://{bucket}"
    assert list(store.list_dir("")) == ["k"]


def test_store_built_from_an_obstore_store(no_env, bucket):
    raw = obstore.store.S3Store(
        bucket,
        prefix="coll",
        endpoint=S3.endpoint(),
        access_key_id=S3.ACCESS_KEY,
        secret_access_key=S3.SECRET_KEY,
        region=S3.REGION,
        client_options={"allow_http": True},
    )
    store = ObjectStore.from_obstore(raw, uri=f"s3://{bucket}/coll")
    _round_trip(store)
    assert "coll/_zcollection.json" in _keys(bucket)
    with pytest.raises(TypeError):
        ObjectStore.from_obstore(object())


def test_store_pickles(env, bucket):
    store = zc.open_store(f"s3://{bucket}/coll")
    store.write_bytes("k", b"1")
    clone = pickle.loads(pickle.dumps(store))
    assert clone.root_uri == store.root_uri
    assert clone.read_bytes("k") == b"1"


def test_other_clouds_open_without_io():
    gcs = zc.open_store("gs://bucket/prefix", storage_options={"anon": True})
    assert isinstance(gcs.obstore, obstore.store.GCSStore)
    azure = zc.open_store("az://container/prefix", storage_options={"account_name": "acc"})
    assert isinstance(azure.obstore, obstore.store.AzureStore)
    http = zc.open_store("https://example.com/data/coll", read_only=True)
    assert isinstance(http.obstore, obstore.store.HTTPStore)
    assert http.root_uri == "https://example.com/data/coll"
    assert http.read_only


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("s3://", None),
        ("s3:///prefix", None),
        ("s3://bucket/a/../b", None),
        ("s3://bucket/coll#frag", None),
        ("s3://bucket/coll", {"no_such_option": "1"}),
        ("s3://bucket/coll", {"max_retries": "many"}),
        ("s3://bucket/coll", {"retry_timeout": -1}),
        ("s3://bucket/coll", {"anon": "maybe"}),
        ("s3://bucket/coll", {"client_options": "allow_http"}),
        ("https://example.com/coll", {"region": "us-east-1"}),
    ],
)
def test_bad_urls_and_options_raise_invalid_url(url, options):
    with pytest.raises(zc.InvalidURLError):
        zc.open_store(url, storage_options=options)


# -- errors ------------------------------------------------------------------------------------


def test_missing_bucket_is_a_store_error_and_nothing_is_created(env):
    name = "zc-missing-bucket"
    store = zc.open_store(f"s3://{name}/coll")
    for call in (
        lambda: store.read_bytes("k"),
        lambda: store.exists("k"),
        lambda: list(store.list_dir("")),
        lambda: list(store.list_prefix("")),
        lambda: store.write_bytes("k", b"1"),
        lambda: store.delete_prefix(""),
        lambda: zc.open_collection(f"s3://{name}/coll", mode="rw"),
        lambda: _round_trip(f"s3://{name}/coll"),
    ):
        with pytest.raises(zc.StoreError) as info:
            call()
        message = _assert_one_line_store_error(info)
        assert f"s3://{name}/coll" in message and "bucket does not exist" in message
    buckets = [b["Name"] for b in S3.s3_client().list_buckets()["Buckets"]]
    assert name not in buckets


def test_missing_collection_in_a_bucket_is_not_found_and_creates_nothing(env, bucket):
    for mode in ("r", "rw"):
        with pytest.raises(zc.CollectionNotFoundError):
            zc.open_collection(f"s3://{bucket}/missing", mode=mode)
    assert _keys(bucket) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_endpoint_is_a_store_error(no_env):
    url = f"s3://bucket/coll?endpoint_url=http://127.0.0.1:{_closed_port()}&allow_http=true"
    store = zc.open_store(url, storage_options={"max_retries": 0, "anon": True})
    for call in (
        lambda: store.read_bytes("k"),
        lambda: store.exists("k"),
        lambda: list(store.list_dir("")),
        lambda: store.write_bytes("k", b"1"),
        lambda: store.delete_prefix("coll"),
        lambda: zc.open_collection(store),
        lambda: _round_trip(store),
    ):
        with pytest.raises(zc.StoreError) as info:
            call()
        assert "Connection refused" in _assert_one_line_store_error(info)


class _Denied(BaseHTTPRequestHandler):
    """Answers every request like S3 does to a caller without permission."""

    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
    )

    def _deny(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(self.body)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _deny

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def denying_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Denied)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_denied_access_is_a_store_error(no_env, denying_endpoint):
    store = zc.open_store(
        "s3://bucket/coll",
        storage_options={
            "endpoint": denying_endpoint,
            "allow_http": "true",
            "access_key_id": "wrong",
            "secret_access_key": "wrong",
            "max_retries": 0,
        },
    )
    for call in (
        lambda: store.read_bytes("k"),
        lambda: store.exists("k"),
        lambda: list(store.list_dir("")),
        lambda: store.write_bytes("k", b"1"),
        lambda: zc.open_collection(store),
    ):
        with pytest.raises(zc.StoreError) as info:
            call()
        _assert_one_line_store_error(info)
    with pytest.raises(zc.StoreError, match="AccessDenied: Access Denied"):
        store.read_bytes("k")


# -- read-only ---------------------------------------------------------------------------------


def test_read_only_store_reads_and_refuses_writes(env, bucket):
    zc.open_store(f"s3://{bucket}/coll").write_bytes("a/k", b"1")
    store = zc.open_store(f"s3://{bucket}/coll", read_only=True)
    assert store.read_only and store.zarr_store().read_only
    assert store.read_bytes("a/k") == b"1"
    assert list(store.list_dir("")) == ["a"]
    with pytest.raises(zc.ReadOnlyError):
        store.write_bytes("a/k", b"2")
    with pytest.raises(zc.ReadOnlyError):
        store.delete_prefix("a")
    with pytest.raises(zc.ReadOnlyError):
        store.new_session()
    with pytest.raises(zc.ReadOnlyError):
        zc.create_collection(
            store,
            schema=_schema(),
            axis="n",
            partitioning=zc.partitioning.Sequence(("cycle",), dimension="n"),
        )
    assert _keys(bucket) == ["coll/a/k"]


# -- listing and deleting prefixes -------------------------------------------------------------


def test_list_and_delete_prefixes(env, bucket):
    client = S3.s3_client()
    client.put_object(Bucket=bucket, Key="outside/k", Body=b"o")
    client.put_object(Bucket=bucket, Key="collection/k", Body=b"o")  # shares a string prefix
    store = zc.open_store(f"s3://{bucket}/coll")
    for key in ("zarr.json", "a/zarr.json", "a/b/c/0", "ab/x", "year=2024/month=1/zarr.json"):
        store.write_bytes(key, b"x")
    store.write_bytes("year=2024/month=10/zarr.json", b"x")
    assert list(store.list_dir("")) == ["a", "ab", "year=2024", "zarr.json"]
    assert list(store.list_dir("/a/")) == ["b", "zarr.json"]
    assert list(store.list_dir("year=2024")) == ["month=1", "month=10"]
    assert list(store.list_dir("nothing")) == []
    assert list(store.list_prefix("a")) == ["a/b/c/0", "a/zarr.json"]
    assert list(store.list_prefix("nothing")) == []
    # whole path segments: month=1 is not a prefix of month=10
    store.delete_prefix("year=2024/month=1")
    assert list(store.list_dir("year=2024")) == ["month=10"]
    store.delete_prefix("a")
    store.delete_prefix("nothing")
    assert list(store.list_prefix("")) == ["ab/x", "year=2024/month=10/zarr.json", "zarr.json"]
    store.delete_prefix("")  # clears the store's prefix, nothing else in the bucket
    assert list(store.list_prefix("")) == []
    assert _keys(bucket) == ["collection/k", "outside/k"]


def test_drop_and_overwrite_leave_no_stray_keys(env, bucket):
    url = f"s3://{bucket}/coll"
    _round_trip(url)
    col = zc.open_collection(url, mode="rw")
    assert col.drop_partitions(filters="cycle == 1") == ["cycle=1"]
    assert not any(key.startswith("coll/cycle=1/") for key in _keys(bucket))
    zc.create_collection(
        url,
        schema=_schema(),
        axis="n",
        partitioning=zc.partitioning.Sequence(("cycle",), dimension="n"),
        overwrite=True,
    )
    assert not any("cycle=" in key for key in _keys(bucket))
    assert list(zc.open_collection(url).partitions()) == []
