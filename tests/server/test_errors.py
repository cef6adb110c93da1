"""The one error mapping: engine error classes -> Flight error classes with the code in
``extra_info``; no traceback nor code path reaches a client; handler bugs are internal errors
whose traceback goes to the log."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_proto as zp
import zcollection_server
from zcollection.errors import ERROR_CLASSES
from zcollection_server import errors as server_errors
from zcollection_server import names as server_names
from zcollection_server import server as server_module

#: Engine (and wire) error class -> (error class a pyarrow client raises, kind).
MAPPING: list[tuple[type[BaseException], type[Exception], str]] = [
    (zc.CollectionNotFoundError, pa.ArrowKeyError, "not_found"),
    (zc.CollectionExistsError, flight.FlightServerError, "already_exists"),
    (zc.PartitionExistsError, flight.FlightServerError, "already_exists"),
    (zc.ReadOnlyError, flight.FlightUnauthorizedError, "permission_denied"),
    (zc.SchemaError, pa.ArrowInvalid, "invalid_argument"),
    (zc.ExpressionError, pa.ArrowInvalid, "invalid_argument"),
    (zc.PartitionError, pa.ArrowInvalid, "invalid_argument"),
    (zc.StoreError, flight.FlightUnavailableError, "unavailable"),
    (zc.ConflictError, flight.FlightUnavailableError, "unavailable"),
    (zc.CatalogDisabledError, pa.ArrowInvalid, "invalid_argument"),
    (zc.InvalidURLError, pa.ArrowInvalid, "invalid_argument"),
    (zc.FormatVersionError, pa.ArrowInvalid, "invalid_argument"),
    (zc.ZCollectionError, pa.ArrowInvalid, "invalid_argument"),
    (zp.CommandError, pa.ArrowInvalid, "invalid_argument"),
    (server_names.InvalidNameError, pa.ArrowInvalid, "invalid_argument"),
    (server_errors.ClientError, pa.ArrowInvalid, "invalid_argument"),
    (server_errors.Unimplemented, pa.ArrowNotImplementedError, "unimplemented"),
]


def test_the_mapping_covers_every_engine_error_class() -> None:
    assert set(ERROR_CLASSES.values()) <= {cls for cls, _, _ in MAPPING}
    codes = [cls.code for cls, _, _ in MAPPING]  # type: ignore[attr-defined]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize(
    ("error", "flight_class", "kind"), MAPPING, ids=[cls.__name__ for cls, _, _ in MAPPING]
)
def test_every_error_class_travels_with_its_code(
    h: Any,
    start_server: Any,
    broken_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    error: type[Exception],
    flight_class: type[Exception],
    kind: str,
) -> None:
    running = start_server(broken_root)

    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise error(f"simulated {error.__name__} at /srv/secret/engine.py line 1")

    monkeypatch.setattr(running.server.registry, "open_async", fail)
    calls = [
        lambda: running.client.get_flight_info(flight.FlightDescriptor.for_path("good")),
        lambda: h.read(running.client, zp.encode_command(zp.Query(collection="good"))),
        lambda: h.action(running.client, "describe", zp.Describe(collection="good"), as_json=True),
        lambda: _put_nothing(running.client, flight.FlightDescriptor.for_path("good")),
    ]
    for call in calls:
        with pytest.raises(h.SERVER_ERRORS) as caught:
            call()
        assert type(caught.value) is flight_class
        info = h.error_info(caught.value, check_leak=False)
        assert info["code"] == error.code  # type: ignore[attr-defined]
        assert info["kind"] == kind
        assert len(info["request_id"]) == 16
        text = str(caught.value).strip("'\"")
        assert text.startswith(f"[{error.code}] simulated")  # type: ignore[attr-defined]
        assert f"(request {info['request_id']})" in text
        assert "Traceback" not in text


def _put_nothing(client: flight.FlightClient, descriptor: flight.FlightDescriptor) -> None:
    writer, _ = client.do_put(descriptor, pa.schema([("time", pa.timestamp("ns"))]))
    writer.done_writing()
    writer.close()


def test_get_schema_errors_carry_the_code_and_no_server_path(
    h: Any, start_server: Any, broken_root: Path
) -> None:
    """pyarrow's get_schema callback sends the traceback of whatever the handler raises (its
    other callbacks turn a FlightError into a Flight status), and its client raises a plain
    ArrowException without extra_info: the message still starts with the code and names no
    file of the server's code."""
    running = start_server(broken_root)
    for descriptor, code in [
        (flight.FlightDescriptor.for_path("nope"), "COLLECTION_NOT_FOUND"),
        (flight.FlightDescriptor.for_command(b"junk"), "INVALID_COMMAND"),
        (h.query_descriptor(collection="good", variables=["nope"]), "SCHEMA_ERROR"),
    ]:
        with pytest.raises(pa.ArrowException) as caught:
            running.client.get_schema(descriptor)
        text = str(caught.value)
        assert f"[{code}] " in text
        assert "(request " in text
        assert server_module.__file__ not in text
        assert os.path.dirname(server_module.__file__) not in text
        assert os.path.dirname(zc.__file__) not in text
        assert '.py"' not in text and ".py'" not in text, text
    assert running.client.get_schema(flight.FlightDescriptor.for_path("good")).schema


@pytest.fixture(scope="module")
def broken_root(tmp_path_factory: pytest.TempPathFactory, h: Any) -> Path:
    """A good collection and collections broken in various ways (never written to)."""
    root = tmp_path_factory.mktemp("broken")
    h.make_alti(str(root / "good"), months=1)
    h.make_alti(str(root / "corrupt_json"), months=1)
    (root / "corrupt_json" / "_zcollection.json").write_text("{not json")
    h.make_alti(str(root / "future"), months=1)
    config = root / "future" / "_zcollection.json"
    doc = json.loads(config.read_text())
    doc["format_version"] = 99
    config.write_text(json.dumps(doc))
    h.make_alti(str(root / "corrupt_chunks"), months=1)
    for dirpath, _, files in os.walk(root / "corrupt_chunks" / "year=2024"):
        if f"{os.sep}ssh{os.sep}c" in dirpath + os.sep:
            for name in files:
                Path(dirpath, name).write_bytes(b"not zstd at all" * 8)
    return root


def _query(**fields: Any) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(zp.encode_command(zp.Query(**fields)))


CASES: list[tuple[str, Any, str, str]] = [
    (
        "unknown collection (path)",
        lambda c: c.get_flight_info(flight.FlightDescriptor.for_path("nope")),
        "COLLECTION_NOT_FOUND",
        "not_found",
    ),
    (
        "unknown collection (ticket)",
        lambda c: c.do_get(
            flight.Ticket(zp.encode_command(zp.Query(collection="nope")))
        ).read_all(),
        "COLLECTION_NOT_FOUND",
        "not_found",
    ),
    (
        "unknown partition",
        lambda c: c.get_flight_info(flight.FlightDescriptor.for_path("good", "year=2023/month=01")),
        "COLLECTION_NOT_FOUND",
        "not_found",
    ),
    (
        "unknown partition (ticket)",
        lambda c: c.do_get(
            flight.Ticket(
                zp.encode_command(
                    zp.PartitionTicket(collection="good", partition="year=2031/month=01")
                )
            )
        ).read_all(),
        "COLLECTION_NOT_FOUND",
        "not_found",
    ),
    (
        "unknown variable",
        lambda c: c.get_flight_info(_query(collection="good", variables=["nope"])),
        "SCHEMA_ERROR",
        "invalid_argument",
    ),
    (
        "bound not a date",
        lambda c: c.do_get(
            flight.Ticket(
                zp.encode_command(
                    zp.Query(
                        collection="good",
                        selection=zp.RowSelection(lower=zp.Bound(text="yesterday")),
                    )
                )
            )
        ).read_all(),
        "SCHEMA_ERROR",
        "invalid_argument",
    ),
    (
        "filter syntax",
        lambda c: c.get_flight_info(_query(collection="good", filters="month ==")),
        "EXPRESSION_ERROR",
        "invalid_argument",
    ),
    (
        "filter unknown key",
        lambda c: c.get_flight_info(_query(collection="good", filters="cycle == 1")),
        "EXPRESSION_ERROR",
        "invalid_argument",
    ),
    (
        "filter call",
        lambda c: c.get_flight_info(_query(collection="good", filters="__import__('os').getcwd()")),
        "EXPRESSION_ERROR",
        "invalid_argument",
    ),
    (
        "bad partition path",
        lambda c: c.get_flight_info(flight.FlightDescriptor.for_path("good", "year=2024")),
        "INVALID_NAME",
        "invalid_argument",
    ),
    (
        "corrupt config",
        lambda c: c.get_flight_info(flight.FlightDescriptor.for_path("corrupt_json")),
        "STORE_ERROR",
        "unavailable",
    ),
    (
        "newer format",
        lambda c: c.get_flight_info(flight.FlightDescriptor.for_path("future")),
        "FORMAT_VERSION",
        "invalid_argument",
    ),
    (
        "garbage descriptor",
        lambda c: c.get_flight_info(flight.FlightDescriptor.for_command(b"\x08\x96\x01garbage")),
        "INVALID_COMMAND",
        "invalid_argument",
    ),
    (
        "garbage ticket",
        lambda c: c.do_get(flight.Ticket(b"\xde\xad\xbe\xef")).read_all(),
        "INVALID_COMMAND",
        "invalid_argument",
    ),
    (
        "empty ticket",
        lambda c: c.do_get(flight.Ticket(b"")).read_all(),
        "INVALID_COMMAND",
        "invalid_argument",
    ),
    (
        "empty command JSON",
        lambda c: c.get_flight_info(flight.FlightDescriptor.for_command(b"{}")),
        "INVALID_COMMAND",
        "invalid_argument",
    ),
    (
        "malformed JSON",
        lambda c: c.get_flight_info(
            flight.FlightDescriptor.for_command(b'{"query": {"collection": ')
        ),
        "INVALID_COMMAND",
        "invalid_argument",
    ),
    (
        "JSON of another type",
        lambda c: c.get_flight_info(
            flight.FlightDescriptor.for_command(
                b'{"query": {"collection": "good", "variables": 3}}'
            )
        ),
        "INVALID_COMMAND",
        "invalid_argument",
    ),
    (
        "insert command as a read",
        lambda c: c.get_flight_info(
            flight.FlightDescriptor.for_command(zp.encode_command(zp.Insert(collection="good")))
        ),
        "INVALID_REQUEST",
        "invalid_argument",
    ),
    (
        "insert command as a ticket",
        lambda c: c.do_get(
            flight.Ticket(zp.encode_command(zp.Insert(collection="good")))
        ).read_all(),
        "INVALID_REQUEST",
        "invalid_argument",
    ),
    (
        "path of three parts",
        lambda c: c.get_flight_info(flight.FlightDescriptor.for_path("good", "a", "b")),
        "INVALID_REQUEST",
        "invalid_argument",
    ),
    (
        "partition ticket without partition",
        lambda c: c.do_get(
            flight.Ticket(zp.encode_command(zp.PartitionTicket(collection="good")))
        ).read_all(),
        "INVALID_REQUEST",
        "invalid_argument",
    ),
    (
        "do_exchange",
        lambda c: c.do_exchange(flight.FlightDescriptor.for_path("good"))[1].read_all(),
        "UNIMPLEMENTED",
        "unimplemented",
    ),
]


@pytest.mark.parametrize(("label", "call", "code", "kind"), CASES, ids=[c[0] for c in CASES])
def test_real_errors_map_to_their_code(
    h: Any, start_server: Any, broken_root: Path, label: str, call: Any, code: str, kind: str
) -> None:
    running = start_server(broken_root)
    with pytest.raises(h.SERVER_ERRORS) as caught:
        call(running.client)
    info = h.error_info(caught.value)
    assert (info["code"], info["kind"]) == (code, kind), str(caught.value)
    expected = {
        "not_found": pa.ArrowKeyError,
        "invalid_argument": pa.ArrowInvalid,
        "unimplemented": pa.ArrowNotImplementedError,
    }.get(kind) or server_errors.FLIGHT_CLASSES[kind]
    assert type(caught.value) is expected
    # the server keeps serving
    assert running.client.get_flight_info(flight.FlightDescriptor.for_path("good")).total_records


def test_broken_collections_are_left_out_of_list_flights(
    start_server: Any, broken_root: Path
) -> None:
    running = start_server(broken_root)
    names = sorted(i.descriptor.path[0].decode() for i in running.client.list_flights())
    assert names == ["corrupt_chunks", "good"]


def test_a_corrupt_array_is_an_internal_error_with_the_traceback_in_the_log(
    h: Any, start_server: Any, broken_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    running = start_server(broken_root)
    caplog.set_level(logging.INFO, logger="zcollection_server")
    info = running.client.get_flight_info(flight.FlightDescriptor.for_path("corrupt_chunks"))
    with pytest.raises(flight.FlightInternalError) as caught:
        h.read(running.client, info.endpoints[0].ticket)
    extra = h.error_info(caught.value)
    assert (extra["code"], extra["kind"]) == ("INTERNAL", "internal")
    assert "zstd" not in str(caught.value).lower()  # no internal detail either
    logged = [r for r in caplog.records if r.exc_info and extra["request_id"] in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].levelno == logging.ERROR
    calls = [r.getMessage() for r in caplog.records if r.name == "zcollection_server.calls"]
    assert any(f"request_id={extra['request_id']}" in m and "status=INTERNAL" in m for m in calls)
    # the server keeps serving
    assert running.client.get_flight_info(flight.FlightDescriptor.for_path("good")).total_records


@pytest.mark.parametrize(
    "bug",
    [RuntimeError, AttributeError, ZeroDivisionError, KeyError, TypeError, ValueError, IndexError],
)
def test_a_handler_bug_is_an_internal_error(
    h: Any,
    start_server: Any,
    broken_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    bug: type[Exception],
) -> None:
    running = start_server(broken_root)
    caplog.set_level(logging.INFO, logger="zcollection_server")
    secret = f"{server_module.__file__}: private detail"

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise bug(secret)

    monkeypatch.setattr(server_module, "partition_schema", broken)
    monkeypatch.setattr(zcollection_server.actions.ActionHandlers, "info", broken)
    calls = [
        lambda: running.client.get_flight_info(flight.FlightDescriptor.for_path("good")),
        lambda: h.read(running.client, zp.encode_command(zp.Query(collection="good"))),
        lambda: list(running.client.list_flights()),
        lambda: h.action(running.client, "describe", zp.Describe(collection="good"), as_json=False),
    ]
    for call in calls:
        caplog.clear()
        with pytest.raises(flight.FlightInternalError) as caught:
            call()
        extra = h.error_info(caught.value)
        assert extra["code"] == "INTERNAL"
        assert secret not in str(caught.value)
        tracebacks = [r for r in caplog.records if r.exc_info is not None]
        assert len(tracebacks) == 1
        assert extra["request_id"] in tracebacks[0].getMessage()
        assert tracebacks[0].exc_info[0] is bug
    assert running.client.list_actions()
