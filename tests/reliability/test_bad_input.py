"""Bad input, property-based, against one server subprocess: random and malformed tickets,
descriptors, commands (protobuf and JSON), action bodies, schema and partitioning JSON, do_put
streams, names that try to leave the root and filters that try to run code or exhaust the
server.

Every call either succeeds harmlessly or fails with a clear error (a ``[CODE] ... (request
id)`` Flight/Arrow error, no traceback, never INTERNAL); the server keeps serving (a good read
after every example) and the checksum of every stored file is unchanged afterwards.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy
import pyarrow as pa
import pyarrow.flight as flight
import pytest
import zcollection as zc
import zcollection_proto as zp
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from zcollection.view import View

#: Each property runs this many examples (more with ZC_FUZZ_EXAMPLES=1000 for a deeper search);
#: an example may take at most DEADLINE.
EXAMPLES = int(os.environ.get("ZC_FUZZ_EXAMPLES", "100"))
DEADLINE = timedelta(seconds=5)
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=DEADLINE,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Seconds any single call may take before the test calls it resource exhaustion.
CALL_LIMIT = 4.0

EXISTING = ("alti", "seq/orbits")
PARTITIONS: dict[str, list[tuple[int, ...]]] = {
    "alti": [(2024, 1), (2024, 2)],
    "seq/orbits": [(1,), (2,), (10,)],
}
KEY_NAMES: dict[str, tuple[str, ...]] = {"alti": ("year", "month"), "seq/orbits": ("num",)}
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) zcollection_server[. ]"
)
GRPC_NOISE = re.compile(r"^([EWI]\d{4} |WARNING: All log messages before absl)")


# -- the served world --------------------------------------------------------------------------
@dataclass(repr=False)
class World:
    root: Path
    server: Any
    client: flight.FlightClient
    before: dict[str, str]
    rows: int
    rel: Any

    def good_read(self) -> None:
        """The server still answers, with the right data."""
        options = flight.FlightCallOptions(timeout=20)
        info = self.client.get_flight_info(flight.FlightDescriptor.for_path("alti"), options)
        assert info.total_records == self.rows
        table = self.client.do_get(info.endpoints[0].ticket, options).read_all()
        assert table.num_rows == 31 * self.rel.PER_DAY

    def unchanged(self) -> None:
        assert self.server.alive(), self.server.log_text()[-3000:]
        after = self.rel.snapshot(self.root)
        assert after == self.before, _diff(self.before, after)


def _diff(before: dict[str, str], after: dict[str, str]) -> str:
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    return f"changed: {changed[:20]}"


@pytest.fixture(scope="module")
def world(rel: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("bad-input")
    root = base / "root"
    alti = rel.make_alti(str(root / "alti"), months=2)
    View.create(
        zc.open_store(str(root / "alti" / "_views" / "extra")),
        base=alti,
        variables=[
            zc.VariableSchema("ssh2", dtype=numpy.dtype("float32"), dimensions=("time", "x_ac"))
        ],
        reference=str(root / "alti"),
    )
    seq = rel.make_seq(str(root / "seq" / "orbits"))
    nums = numpy.repeat(numpy.array([10, 2, 1]), 5)
    seq.insert(rel.seq_rows(nums, numpy.arange(nums.size)))
    server = rel.ServerProcess(base / "server.log", "--root", str(root), "--port", "0")
    client = server.connect()
    world = World(root, server, client, rel.snapshot(root), 60 * rel.PER_DAY, rel)
    world.good_read()
    yield world
    client.close()
    server.kill()
    # one line per call, whatever the names sent: none forged, no traceback
    for line in server.log_text().splitlines():
        assert LOG_LINE.match(line) or GRPC_NOISE.match(line), line
        assert "status=INTERNAL" not in line, line


def _timed(call: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        started = time.monotonic()
        try:
            return call()
        finally:
            elapsed = time.monotonic() - started
            assert elapsed < CALL_LIMIT, f"a call took {elapsed:.1f} s"

    return run


# -- strategies --------------------------------------------------------------------------------
NAME_PIECES = [
    "..", ".", "", "alti", "seq", "orbits", "extra", "evil", "%2e%2e", "%2F", "%00", "%2e",
    "\\", "..\\..", "\x00", "~", "C:", "/", "//", " ", "\t", "\n", "_views", "_catalog",
    "year=2024", "month=01", "num=2", "\u2024\u2024", "\uff0e\uff0e", "\u202e", "a" * 130,
    "etc", "passwd", "*", "?", "$HOME", "file:", "file:///etc", "memory://x", "s3://bucket",
    "icechunk:///tmp", "zarr.json", "_zcollection.json",
]  # fmt: skip


def names() -> st.SearchStrategy[str]:
    """Collection, view and partition names, mostly hostile."""
    pieces = st.lists(st.sampled_from(NAME_PIECES), min_size=1, max_size=6)
    return st.one_of(
        pieces.map("".join),
        pieces.map("/".join),
        st.sampled_from(NAME_PIECES),
        st.text(max_size=40),
        st.sampled_from(["/" * 600, "a/" * 20 + "a", "x" * 1100]),
    )


CODE = [
    "__import__('os').system('touch /tmp/zc-pwned')",
    "open('/etc/passwd').read()",
    "year.__class__.__mro__[1].__subclasses__()",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "(lambda: 1)()",
    "year == 2024; import os",
    "f'{year}' == '2024'",
    "(x := 2024) == year",
    "exec('1')",
    "eval('year')",
    "globals()",
    "year if year else month",
    "{'a': year}",
    "year[0]",
    "year @ month",
    "~year == 1",
    "*year",
    "await year",
    "yield year",
    "year == b'2024'",
    "year == 2024j",
    "year == None",
    "year == ...",
    "month == 1e400",
    "month == -1e400",
    "month == float('nan')",
    "'a' * 10 ** 9 == year",
    "9 ** 9 ** 9 ** 9 == year",
    "year in range(10 ** 12)",
    "year in (1 for _ in iter(int, 1))",
]
TOKENS = [
    "year", "month", "num", "==", "!=", "<", ">=", "and", "or", "not", "(", ")", "in",
    "not in", "1", "-", "2024", "'a'", ",", "**", "[", "]", "{", "}", "lambda", ":", ".",
    "__import__", "True", "None", "1e308", "0x10", "1j", "b'x'", "...", "if", "else", "is",
    "pass", "import", "=", ";", "\\", "#", "\n",
]  # fmt: skip


def filters() -> st.SearchStrategy[str]:
    """Filters that run code, exhaust the parser or the evaluator, or are just noise."""
    depth = st.integers(1, 3000)
    return st.one_of(
        depth.map(lambda k: "(" * k + "year == 2024" + ")" * k),
        depth.map(lambda k: "not " * k + "year == 2024"),
        depth.map(lambda k: "-" * k + "1 == year"),
        depth.map(lambda k: "[" * k + "]" * k),
        depth.map(lambda k: "(" * k),
        depth.map(lambda k: " and ".join(["year == 2024"] * k)),
        depth.map(lambda k: " < ".join(["1"] * k)),
        st.integers(1, 12_000).map(lambda k: "year == " + "9" * k),
        st.integers(1, 12_000).map(lambda k: "year == '" + "x" * k + "'"),
        depth.map(lambda k: "month in (" + ", ".join(str(i) for i in range(k)) + ")"),
        depth.map(lambda k: "month not in (" + ", ".join(f"'{i}'" for i in range(k)) + ")"),
        st.integers(1, 2000).map(lambda k: " ** ".join(["9"] * k) + " == year"),
        st.sampled_from(CODE),
        st.lists(st.sampled_from(TOKENS), max_size=30).map(" ".join),
        st.text(max_size=100),
    )


def json_values() -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False),
        st.text(max_size=20),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(max_size=12), children, max_size=4),
        ),
        max_leaves=20,
    )


def _containers(doc: Any, found: list[tuple[Any, Any]]) -> None:
    if isinstance(doc, dict):
        for key, value in doc.items():
            found.append((doc, key))
            _containers(value, found)
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found.append((doc, index))
            _containers(value, found)


@st.composite
def mutated_json(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` with one to three random edits: a value replaced, a key removed or added."""
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 3))):
        found: list[tuple[Any, Any]] = []
        _containers(doc, found)
        if not found:
            return draw(json_values())
        container, key = draw(st.sampled_from(found))
        edit = draw(st.sampled_from(["replace", "remove", "add"]))
        if edit == "replace":
            container[key] = draw(json_values())
        elif edit == "remove":
            del container[key]
        elif isinstance(container, dict):
            container[draw(st.text(max_size=12))] = draw(json_values())
        else:
            container.append(draw(json_values()))
    return doc


@st.composite
def corrupted(draw: st.DrawFn, valid: bytes) -> bytes:
    """``valid`` truncated, with bytes flipped, inserted, appended or prepended."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(st.sampled_from(["truncate", "flip", "insert", "append", "prepend"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if edit == "truncate":
            del data[at:]
        elif edit == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif edit == "append":
            data += draw(st.binary(min_size=1, max_size=16))
        else:
            data[:0] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def scalars() -> st.SearchStrategy[zp.Scalar]:
    units = st.sampled_from(["s", "ns", "D", "M", "Y", "W", "as", "", "generic", "10s", "x"])
    times = st.builds(
        zp.TimeValue, count=st.integers(-(2**63), 2**63 - 1), unit=units | st.text(max_size=5)
    )
    return st.one_of(
        st.builds(zp.Scalar, int_value=st.integers(-(2**63), 2**63 - 1)),
        st.builds(zp.Scalar, uint_value=st.integers(0, 2**64 - 1)),
        st.builds(zp.Scalar, float_value=st.floats()),
        st.builds(zp.Scalar, string_value=st.text(max_size=30)),
        st.builds(zp.Scalar, bytes_value=st.binary(max_size=30)),
        st.builds(zp.Scalar, bool_value=st.booleans()),
        st.builds(zp.Scalar, datetime_value=times),
        st.builds(zp.Scalar, timedelta_value=times),
        st.just(zp.Scalar()),
    )


@st.composite
def selections(draw: st.DrawFn) -> zp.RowSelection:
    message = zp.RowSelection()
    for which in ("lower", "upper"):
        choice = draw(st.sampled_from(["none", "text", "scalar", "empty"]))
        bound = getattr(message, which)
        if choice == "text":
            texts = st.sampled_from(["2024-01-15", "yesterday", "", "NaT", "2024-13-45", "1e9"])
            bound.text = draw(texts | st.text(max_size=30))
        elif choice == "scalar":
            bound.scalar.CopyFrom(draw(scalars()))
        elif choice == "empty":
            bound.SetInParent()
        if choice != "none":
            bound.inclusive = draw(st.booleans())
    if draw(st.booleans()):
        message.variable = draw(st.sampled_from(["time", "/time", "ssh", "num"]) | names())
    return message


def collection_names() -> st.SearchStrategy[str]:
    return st.sampled_from(EXISTING) | names()


def variable_lists() -> st.SearchStrategy[list[str]]:
    known = st.sampled_from(
        ["time", "ssh", "/ssh", "x_ac", "data_01/flag", "/data_01/flag", "ssh2"]
    )
    return st.lists(known | names(), max_size=4)


@st.composite
def read_commands(draw: st.DrawFn) -> zp.Command:
    """Query, PartitionTicket and ImmutableTicket commands with hostile fields."""
    kind = draw(st.sampled_from(["query", "partition", "immutable"]))
    fields: dict[str, Any] = {"collection": draw(collection_names())}
    if draw(st.booleans()):
        fields["variables"] = draw(variable_lists())
    if draw(st.booleans()):
        fields["view"] = draw(st.sampled_from(["extra", ""]) | names())
    if kind != "immutable":
        if draw(st.booleans()):
            fields["selection"] = draw(selections())
        if draw(st.booleans()):
            fields["max_batch_bytes"] = draw(st.integers(0, 2**64 - 1))
    if kind == "query" and draw(st.booleans()):
        fields["filters"] = draw(filters())
    if kind == "partition":
        fields["partition"] = draw(
            st.sampled_from(["year=2024/month=01", "num=2", "year=2024/month=02/"]) | names()
        )
    body = {"query": zp.Query, "partition": zp.PartitionTicket, "immutable": zp.ImmutableTicket}
    return zp.make_command(body[kind](**fields))


VALID_COMMANDS = [
    zp.encode_command(zp.PartitionTicket(collection="alti", partition="year=2024/month=01")),
    zp.encode_command(zp.Query(collection="alti", filters="month == 1", variables=["ssh"])),
    zp.encode_command(zp.ImmutableTicket(collection="alti")),
    zp.encode_command(zp.Query(collection="seq/orbits"), as_json=True),
    zp.encode_command(zp.Insert(collection="nowhere", merge="upsert")),
]


def wire_bytes(structured: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Bytes of a command or action body: random, corrupted valid ones, random JSON, and
    structured messages with hostile fields as protobuf or JSON."""
    return st.one_of(
        st.binary(max_size=300),
        st.sampled_from(VALID_COMMANDS).flatmap(corrupted),
        json_values().map(lambda v: json.dumps(v).encode()),
        st.tuples(structured, st.booleans()).map(lambda m: zp.encode_message(m[0], as_json=m[1])),
        st.tuples(structured, st.booleans()).flatmap(
            lambda m: corrupted(zp.encode_message(m[0], as_json=m[1]))
        ),
    )


# -- calls -------------------------------------------------------------------------------------
def _decoded(data: bytes, message_type: Any) -> Any:
    try:
        return zp.decode_message(data, message_type)
    except zp.CommandError:
        return None


def _selects_existing(collection: str, expr: str | None) -> bool:
    """Whether ``expr`` selects a stored partition of ``collection`` (as the engine would)."""
    if collection not in EXISTING:
        return False
    if not expr or not expr.strip():
        return True
    try:
        predicate = zc.partitioning.compile_filter(expr, names=KEY_NAMES[collection])
        keys = [dict(zip(KEY_NAMES[collection], k, strict=True)) for k in PARTITIONS[collection]]
        return any(predicate(key) for key in keys)
    except zc.ExpressionError:
        return False
    except Exception:
        return True  # unknown: do not send it


def _empty_table(rel: Any) -> pa.Table:
    table = zp.dataset_to_table(rel.alti_dataset("2031-01-01", 1), axis="time")
    return table.slice(0, 0)


def _unknown_column_table(rel: Any) -> pa.Table:
    table = zp.dataset_to_table(rel.alti_dataset("2031-01-01", 1), axis="time")
    return table.append_column("zz_not_a_variable", pa.array(numpy.zeros(table.num_rows)))


def _put_safely(world: World, descriptor: flight.FlightDescriptor) -> None:
    """A do_put that must not change anything whatever the descriptor names: an empty stream,
    or one with an unknown column when the descriptor may name a writable target."""
    rel = world.rel
    table = _empty_table(rel)
    if descriptor.descriptor_type == flight.DescriptorType.CMD:
        command = _decoded(descriptor.command, zp.Command)
        if command is not None and command.WhichOneof("command") == "insert":
            table = _unknown_column_table(rel)
    rel.attempt(_timed(lambda: rel.put(world.client, descriptor, table.schema, table.to_batches())))


def _read_calls(world: World, descriptor: flight.FlightDescriptor) -> None:
    rel, client = world.rel, world.client
    options = flight.FlightCallOptions(timeout=20)
    rel.attempt(_timed(lambda: client.get_flight_info(descriptor, options)))
    rel.attempt_get_schema(_timed(lambda: client.get_schema(descriptor, options)))


# -- properties --------------------------------------------------------------------------------
@FUZZ
@given(ticket=wire_bytes(read_commands()))
def test_random_tickets(world: World, ticket: bytes) -> None:
    world.rel.attempt(_timed(lambda: world.rel.read_all(world.client, ticket)))
    world.good_read()


def utf8_bytes() -> st.SearchStrategy[bytes]:
    return names().map(lambda n: n.encode("utf-8"))


@FUZZ
@given(parts=st.lists(st.one_of(names(), utf8_bytes(), collection_names()), max_size=4))
def test_random_path_descriptors(world: World, parts: list[Any]) -> None:
    descriptor = flight.FlightDescriptor.for_path(*parts)
    _read_calls(world, descriptor)
    _put_safely(world, descriptor)
    world.good_read()
    world.unchanged()


def test_path_components_that_are_not_utf8(world: World) -> None:
    """Flight declares path components as protobuf strings: bytes that are not UTF-8 fail to
    parse in gRPC before any handler runs (pyarrow reports it as an internal error with no
    message). The server must survive it and keep serving."""
    for parts in ([b"\x80"], [b"alti", b"\xff\xfe"], [b"\xc3\x28"]):
        descriptor = flight.FlightDescriptor.for_path(*parts)
        with pytest.raises(flight.FlightError):
            world.client.get_flight_info(descriptor)
        with pytest.raises((pa.ArrowException, OSError)):
            world.client.get_schema(descriptor)
        world.good_read()
    world.unchanged()


@FUZZ
@given(command=wire_bytes(read_commands()))
def test_random_commands(world: World, command: bytes) -> None:
    descriptor = flight.FlightDescriptor.for_command(command)
    _read_calls(world, descriptor)
    _put_safely(world, descriptor)
    world.good_read()
    world.unchanged()


@st.composite
def insert_commands(draw: st.DrawFn) -> zp.Insert:
    message = zp.Insert(collection=draw(collection_names()))
    merges = ["", "replace", "concat", "time_series", "upsert", "upsert_within", "average"]
    message.merge = draw(st.sampled_from(merges) | st.text(max_size=20))
    if draw(st.booleans()):
        message.tolerance.value = draw(st.floats())
        message.tolerance.unit = draw(st.sampled_from(["", "s", "h", "D", "M", "as"]) | names())
    if draw(st.booleans()):
        message.overwrite = draw(st.booleans())
    if draw(st.booleans()):
        message.immutable = draw(st.binary(max_size=64))
    message.rewrite = draw(st.booleans())
    if draw(st.booleans()):
        message.view = draw(st.sampled_from(["extra"]) | names())
    if draw(st.booleans()):
        message.partition = draw(st.sampled_from(["year=2024/month=01"]) | names())
    return message


@FUZZ
@given(command=wire_bytes(insert_commands()))
def test_random_insert_commands(world: World, command: bytes) -> None:
    _put_safely(world, flight.FlightDescriptor.for_command(command))
    world.good_read()
    world.unchanged()


# -- action bodies -----------------------------------------------------------------------------
def _field_strategy(field: Any) -> st.SearchStrategy[Any]:
    name = field.name
    if name == "collection":
        single: st.SearchStrategy[Any] = collection_names()
    elif name == "filters":
        single = filters()
    elif name == "view":
        single = st.sampled_from(["extra"]) | names()
    elif name in ("schema", "partitioning", "variables"):
        single = json_values().map(json.dumps) | st.text(max_size=40)
    elif field.type == field.TYPE_BOOL:
        single = st.booleans()
    elif field.type == field.TYPE_STRING:
        single = names()
    else:
        single = st.integers(0, 2**31 - 1)
    repeated = getattr(field, "is_repeated", None)
    if repeated is None:
        repeated = field.label == field.LABEL_REPEATED
    if repeated:
        return st.lists(single, max_size=3)
    return single


def action_messages(request: Any) -> st.SearchStrategy[Any]:
    fields = {f.name: st.none() | _field_strategy(f) for f in request.DESCRIPTOR.fields}
    return st.fixed_dictionaries(fields).map(
        lambda d: request(**{k: v for k, v in d.items() if v is not None})
    )


@st.composite
def actions(draw: st.DrawFn) -> tuple[str, bytes]:
    if draw(st.integers(0, 9)) == 0:
        name = draw(st.sampled_from(["", "zcollection.v1.", "zcollection.v2.describe"]) | names())
        return name, draw(st.binary(max_size=64))
    spec = draw(st.sampled_from(sorted(zp.ACTIONS.values(), key=lambda s: s.name)))
    return spec.name, draw(wire_bytes(action_messages(spec.request)))


def _harmful(name: str, body: bytes) -> bool:
    """Whether the action could legitimately change stored data (not sent)."""
    spec = zp.ACTIONS.get(name)
    if spec is None:
        return False
    message = _decoded(body, spec.request) if body.strip() else spec.request()
    if message is None:
        return False
    collection = getattr(message, "collection", "")
    if name.endswith(".delete_collection"):
        return collection in EXISTING
    if name.endswith(".drop_partitions"):
        filters = message.filters if message.HasField("filters") else None
        return bool(message.all) or _selects_existing(collection, filters)
    if name.endswith((".create_collection", ".create_view")):
        return bool(message.overwrite)
    return False


def _undo_creation(world: World, name: str, body: bytes) -> None:
    """An action that created something (valid input): check it and remove it."""
    spec = zp.ACTIONS[name]
    message = zp.decode_message(body, spec.request)
    if name.endswith(".create_collection"):
        created = world.root / message.collection
        assert created.resolve().is_relative_to(world.root.resolve())
        assert (created / "_zcollection.json").is_file()
        delete = zp.encode_message(zp.DeleteCollection(collection=message.collection))
        list(world.client.do_action(flight.Action("zcollection.v1.delete_collection", delete)))
        # folders of a nested name stay behind; they were not there before
        for parent in [created, *created.parents]:
            if parent == world.root or not parent.is_relative_to(world.root):
                break
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
    elif name.endswith(".create_view"):
        import shutil

        created = world.root / message.collection / "_views" / message.view
        assert created.resolve().is_relative_to(world.root.resolve())
        shutil.rmtree(created)


@FUZZ
@given(action=actions())
def test_random_action_bodies(world: World, action: tuple[str, bytes]) -> None:
    name, body = action
    assume(not _harmful(name, body))
    outcome = world.rel.attempt(
        _timed(lambda: list(world.client.do_action(flight.Action(name, body))))
    )
    if outcome is None and name.endswith((".create_collection", ".create_view")):
        _undo_creation(world, name, body)
    world.good_read()
    world.unchanged()


SCHEMA_JSON = zc.DatasetSchema.to_json(
    zc.Schema()
    .with_dimension("time", chunks=64)
    .with_dimension("x", size=2, chunks=2)
    .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
    .with_variable("v", dtype="float32", dimensions=("time", "x"))
    .build()
)
PARTITIONING_JSON = zc.partitioning.Date("time", resolution="M").to_json()


@FUZZ
@given(
    schema=mutated_json(SCHEMA_JSON).map(json.dumps)
    | json_values().map(json.dumps)
    | st.sampled_from(VALID_COMMANDS).flatmap(corrupted).map(lambda b: b.decode("latin-1")),
    partitioning=mutated_json(PARTITIONING_JSON).map(json.dumps)
    | st.just(json.dumps(PARTITIONING_JSON)),
    axis=st.sampled_from(["time", "x", "", "nope"]) | names(),
    catalog=st.booleans(),
)
def test_schema_and_partitioning_json_of_create_collection(
    world: World, schema: str, partitioning: str, axis: str, catalog: bool
) -> None:
    message = zp.CreateCollection(
        collection="fuzzed",
        schema=schema,
        axis=axis,
        partitioning=partitioning,
        catalog_enabled=catalog,
    )
    for as_json in (False, True):
        body = zp.encode_message(message, as_json=as_json)
        action = flight.Action("zcollection.v1.create_collection", body)

        def create(a: flight.Action = action) -> Any:
            return list(world.client.do_action(a))

        outcome = world.rel.attempt(_timed(create))
        if outcome is None:  # a valid variant of the schema: created, then removed
            _undo_creation(world, "zcollection.v1.create_collection", body)
    world.good_read()
    world.unchanged()


# -- do_put streams ----------------------------------------------------------------------------
KNOWN_COLUMNS = {"time", "ssh", "data_01/flag", "x_ac"}


def _tensor(values: numpy.ndarray[Any, Any]) -> pa.Array:
    """A fixed_shape_tensor column of ``values`` (rows first), empty ones included."""
    values = numpy.ascontiguousarray(values)
    shape = values.shape[1:]
    storage = pa.FixedSizeListArray.from_arrays(
        pa.array(values.reshape(-1)), int(numpy.prod(shape))
    )
    kind = pa.fixed_shape_tensor(pa.from_numpy_dtype(values.dtype), list(shape))
    return pa.ExtensionArray.from_storage(kind, storage)


@st.composite
def foreign_arrays(draw: st.DrawFn, rows: int, exclude: tuple[str, ...] = ()) -> pa.Array:
    """A column of ``rows`` rows of a random Arrow type (``exclude``: kinds left out)."""
    kinds = [
        k
        for k in (
            "int", "float", "bool", "string", "binary", "timestamp", "duration", "date",
            "list", "struct", "dictionary", "null", "tensor", "fixed_list", "decimal",
        )
        if k not in exclude
    ]  # fmt: skip
    kind = draw(st.sampled_from(kinds))
    rng = numpy.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "int":
        dtype = draw(st.sampled_from(["i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8"]))
        info = numpy.iinfo(dtype)
        return pa.array(rng.integers(info.min, info.max, size=rows, dtype=dtype, endpoint=True))
    if kind == "float":
        dtype = draw(st.sampled_from(["f2", "f4", "f8"]))
        values = (rng.normal(size=rows) * 1e3).astype(dtype)
        values[:: max(1, rows // 3)] = numpy.nan
        return pa.array(values, from_pandas=False)
    if kind == "bool":
        return pa.array(rng.integers(0, 2, size=rows).astype(bool))
    if kind == "string":
        words = draw(st.lists(st.text(max_size=10), min_size=1, max_size=4))
        return pa.array([words[i % len(words)] for i in range(rows)], type=pa.string())
    if kind == "binary":
        return pa.array([b"\xff\x00" * (i % 4) for i in range(rows)], type=pa.binary())
    if kind == "timestamp":
        unit = draw(st.sampled_from(["s", "ms", "us", "ns"]))
        tz = draw(st.sampled_from([None, "UTC", "Europe/Paris"]))
        return pa.array(rng.integers(-(2**40), 2**40, size=rows), type=pa.timestamp(unit, tz))
    if kind == "duration":
        return pa.array(rng.integers(-(2**40), 2**40, size=rows), type=pa.duration("ms"))
    if kind == "date":
        return pa.array(rng.integers(-(2**20), 2**20, size=rows).astype("i4"), type=pa.date32())
    if kind == "list":
        return pa.array([[1.0] * (i % 3) for i in range(rows)], type=pa.list_(pa.float64()))
    if kind == "struct":
        return pa.array([{"a": i, "b": "x"} for i in range(rows)])
    if kind == "dictionary":
        return pa.array(["a", "b"] * (rows // 2) + ["a"] * (rows % 2)).dictionary_encode()
    if kind == "null":
        return pa.nulls(rows)
    if kind == "decimal":
        return pa.array([i for i in range(rows)], type=pa.decimal128(10, 2))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    if kind == "tensor":
        return _tensor(rng.normal(size=(rows, *shape)).astype("float32"))
    width = shape[0]
    return pa.FixedSizeListArray.from_arrays(
        pa.array(numpy.zeros(rows * width, dtype="float32")), width
    )


@dataclass(repr=False)
class Stream:
    label: str
    descriptor: flight.FlightDescriptor
    table: pa.Table
    chunk: int

    def __repr__(self) -> str:
        return f"Stream({self.label!r}, {self.table.schema!r}, rows={self.table.num_rows})"


@st.composite
def defective_streams(draw: st.DrawFn, rel: Any) -> Stream:
    """Rows for new partitions of ``alti`` with one defect the server must refuse, and random
    extra metadata on top."""
    days = draw(st.integers(0, 40))
    ds = rel.alti_dataset("2031-03-20", days, seed=draw(st.integers(0, 1000)))
    table = zp.dataset_to_table(ds, axis="time")
    n = table.num_rows
    rng = numpy.random.default_rng(draw(st.integers(0, 1000)))
    defect = draw(
        st.sampled_from(
            [
                "unknown column",
                "missing axis",
                "missing variable of the axis",
                "immutable column",
                "tensor shape",
                "plain ssh",
                "time type",
                "ssh type",
                "flag type",
                "flag out of range",
                "foreign schema metadata",
                "garbage schema metadata",
                "immutable bytes",
                "immutable table",
                "merge",
                "time nulls",
            ]
        )
    )
    columns = {name: table.column(name) for name in table.column_names}
    metadata = dict(table.schema.metadata or {})
    command = zp.Insert(collection="alti")
    if defect == "unknown column":
        name = draw(names().filter(lambda c: c.lstrip("/") not in KNOWN_COLUMNS))
        columns[name] = draw(foreign_arrays(n))
    elif defect == "missing axis":
        del columns["time"]
    elif defect == "missing variable of the axis":
        # without zcollection metadata the stream is read against the collection's schema
        metadata = {}
        del columns["time"]
    elif defect == "immutable column":
        columns["x_ac"] = pa.array(numpy.zeros(n, "int16"))
    elif defect == "tensor shape":
        shape = tuple(draw(st.lists(st.integers(1, 2000), min_size=1, max_size=3)))
        assume(shape != (rel.X_AC,) and numpy.prod(shape) * n < 2_000_000)
        columns["ssh"] = _tensor(rng.normal(size=(n, *shape)).astype("float32"))
    elif defect == "plain ssh":
        columns["ssh"] = pa.array(rng.normal(size=n).astype("float32"))
    elif defect == "time type":
        columns["time"] = draw(
            foreign_arrays(n, exclude=("int", "float", "timestamp", "date", "duration"))
        )
    elif defect == "ssh type":
        columns["ssh"] = draw(foreign_arrays(n, exclude=("tensor", "fixed_list")))
    elif defect == "flag type":
        columns["data_01/flag"] = draw(
            foreign_arrays(n, exclude=("int", "float", "null", "dictionary", "decimal"))
        )
    elif defect == "flag out of range":
        assume(n > 0)  # value defects need values
        columns["data_01/flag"] = pa.array(
            numpy.where(numpy.arange(n) % 2, 256, -1).astype("int64")
        )
    elif defect == "foreign schema metadata":
        doc = json.loads(metadata[b"zcollection.schema"])
        doc = draw(mutated_json(doc).filter(lambda d: d != doc))
        metadata[b"zcollection.schema"] = json.dumps(doc).encode()
        columns["zz_extra"] = pa.array(numpy.zeros(n))  # refused whatever the metadata says
    elif defect == "garbage schema metadata":
        metadata[b"zcollection.schema"] = draw(
            st.binary(max_size=200).filter(lambda b: not _is_json_object(b))
        )
    elif defect == "immutable bytes":
        command.immutable = draw(st.binary(min_size=1, max_size=200))
    elif defect == "immutable table":
        bad = pa.table({"x_ac": _tensor(numpy.zeros((2, rel.X_AC), "int16"))})
        if draw(st.booleans()):
            bad = pa.table({"zz": pa.array([1])})
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, bad.schema) as writer:
            writer.write_table(bad)
        command.immutable = sink.getvalue().to_pybytes()
    elif defect == "merge":
        command.merge = draw(st.text(max_size=20).filter(lambda m: m.strip() not in MERGES))
    elif defect == "time nulls":
        assume(n > 0)
        mask = numpy.zeros(n, dtype=bool)
        mask[draw(st.integers(0, n - 1))] = True
        values = table.column("time").to_numpy()
        columns["time"] = pa.array(values, mask=mask, type=pa.timestamp("ns"))
    if draw(st.booleans()):  # garbage field metadata on top: ignored or refused, never fatal
        name = draw(st.sampled_from(sorted(columns)))
        garbage = {
            b"zcollection.dtype": draw(st.sampled_from([b"<f8", b"|O", b"garbage", b""])),
            b"zcollection.dimensions": draw(st.binary(max_size=20)),
            b"zcollection.encoding": draw(st.sampled_from([b"raw", b"utf32le", b"\xff"])),
        }
        fields = [
            pa.field(k, c.type, metadata=garbage if k == name else None) for k, c in columns.items()
        ]
    else:
        fields = [pa.field(k, c.type) for k, c in columns.items()]
    schema = pa.schema(fields, metadata=metadata or None)
    arrays = [c.combine_chunks() if isinstance(c, pa.ChunkedArray) else c for c in columns.values()]
    bad = pa.Table.from_arrays(arrays, schema=schema)
    if draw(st.booleans()):
        descriptor = flight.FlightDescriptor.for_path("alti")
        if command.immutable or command.merge:
            descriptor = flight.FlightDescriptor.for_command(zp.encode_command(command))
    else:
        if not command.merge:
            command.merge = draw(st.sampled_from(["", "upsert", "concat", "time_series"]))
        command.overwrite = draw(st.booleans())
        encoded = zp.encode_command(command, as_json=draw(st.booleans()))
        descriptor = flight.FlightDescriptor.for_command(encoded)
    return Stream(defect, descriptor, bad, draw(st.integers(1, 64)))


MERGES = {"", "replace", "concat", "time_series", "upsert", "upsert_within"}


def _is_json_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


@FUZZ
@given(data=st.data())
def test_bad_put_streams_are_refused_and_change_nothing(world: World, data: st.DataObject) -> None:
    stream = data.draw(defective_streams(world.rel), label="stream")
    info = world.rel.attempt(
        _timed(
            lambda: world.rel.put(
                world.client,
                stream.descriptor,
                stream.table.schema,
                stream.table.to_batches(max_chunksize=stream.chunk),
            )
        ),
        allow_ok=False,
    )
    assert info is not None and info["kind"] == "invalid_argument", (stream.label, info)
    world.good_read()
    world.unchanged()


# -- names that try to leave the root ----------------------------------------------------------
VARIABLE = json.dumps(
    zc.VariableSchema("ssh3", dtype=numpy.dtype("float32"), dimensions=("time", "x_ac")).to_json()
)


def _name_calls(world: World, name: str) -> list[tuple[str, Callable[[], Any]]]:
    """Every way a client hands the server a collection, view or partition name."""
    client, rel = world.client, world.rel
    options = flight.FlightCallOptions(timeout=20)
    empty = _empty_table(rel)
    unknown = _unknown_column_table(rel)

    def action(verb: str, message: Any, as_json: bool = False) -> Callable[[], Any]:
        body = zp.encode_message(message, as_json=as_json)
        return lambda: list(client.do_action(flight.Action(zp.action_name(verb), body), options))

    def get(command: Any, as_json: bool = False) -> Callable[[], Any]:
        return lambda: rel.read_all(client, zp.encode_command(command, as_json=as_json))

    def info(descriptor: flight.FlightDescriptor) -> Callable[[], Any]:
        return lambda: client.get_flight_info(descriptor, options)

    def info_of(command: Any, as_json: bool = False) -> Callable[[], Any]:
        encoded = zp.encode_command(command, as_json=as_json)
        return info(flight.FlightDescriptor.for_command(encoded))

    def put(descriptor: flight.FlightDescriptor, table: pa.Table) -> Callable[[], Any]:
        return lambda: rel.put(client, descriptor, table.schema, table.to_batches())

    def insert(**fields: Any) -> flight.FlightDescriptor:
        return flight.FlightDescriptor.for_command(zp.encode_command(zp.Insert(**fields)))

    month = "year=2024/month=01"
    calls = [
        ("info path", info(flight.FlightDescriptor.for_path(name))),
        ("info partition path", info(flight.FlightDescriptor.for_path("alti", name))),
        ("info query", info_of(zp.Query(collection=name))),
        ("info view", info_of(zp.Query(collection="alti", view=name), as_json=True)),
        ("get query", get(zp.Query(collection=name), as_json=True)),
        ("get view", get(zp.Query(collection="alti", view=name))),
        ("get partition", get(zp.PartitionTicket(collection="alti", partition=name))),
        ("get partition of", get(zp.PartitionTicket(collection=name, partition=month))),
        ("get in view", get(zp.PartitionTicket(collection="alti", partition=month, view=name))),
        ("get immutable", get(zp.ImmutableTicket(collection=name))),
        ("get immutable view", get(zp.ImmutableTicket(collection="alti", view=name))),
        ("put path", put(flight.FlightDescriptor.for_path(name), empty)),
        ("put insert", put(insert(collection=name, merge="upsert"), unknown)),
        ("put rewrite", put(insert(collection="alti", rewrite=True, partition=name), unknown)),
        ("put view", put(insert(collection="alti", view=name, partition=month), unknown)),
        ("put view at", put(insert(collection="alti", view="extra", partition=name), unknown)),
        ("describe", action("describe", zp.Describe(collection=name), as_json=True)),
        ("list_partitions", action("list_partitions", zp.ListPartitions(collection=name))),
        ("list_views", action("list_views", zp.ListViews(collection=name))),
        ("view", action("describe_view", zp.DescribeView(collection="alti", view=name))),
        ("view of", action("describe_view", zp.DescribeView(collection=name, view="extra"))),
        ("repair_catalog", action("repair_catalog", zp.RepairCatalog(collection=name))),
    ]  # fmt: skip
    if name not in EXISTING:
        calls += [
            ("drop", action("drop_partitions", zp.DropPartitions(collection=name, all=True))),
            ("delete", action("delete_collection", zp.DeleteCollection(collection=name))),
        ]
    if name != "extra":
        view = zp.CreateView(collection="alti", view=name, variables=[VARIABLE])
        calls.append(("create_view", action("create_view", view)))
    return calls


@FUZZ
@given(name=names())
def test_names_never_lead_outside_the_root(world: World, name: str) -> None:
    for label, call in _name_calls(world, name):
        outcome = world.rel.attempt(_timed(call))
        if outcome is None and label == "create_view":  # a fine name: the view is created
            _undo_creation(
                world,
                "zcollection.v1.create_view",
                zp.encode_message(zp.CreateView(collection="alti", view=name)),
            )
    world.good_read()
    world.unchanged()


# -- filters -----------------------------------------------------------------------------------
@FUZZ
@given(expr=filters(), collection=st.sampled_from(EXISTING), as_json=st.booleans())
def test_filters_never_run_code_nor_exhaust_the_server(
    world: World, expr: str, collection: str, as_json: bool
) -> None:
    client, rel = world.client, world.rel
    options = flight.FlightCallOptions(timeout=20)
    query = zp.encode_command(zp.Query(collection=collection, filters=expr), as_json=as_json)
    listing = zp.encode_message(
        zp.ListPartitions(collection=collection, filters=expr), as_json=as_json
    )
    calls = [
        lambda: client.get_flight_info(flight.FlightDescriptor.for_command(query), options),
        lambda: rel.read_all(client, query),
        lambda: list(client.do_action(flight.Action("zcollection.v1.list_partitions", listing))),
    ]
    if not _selects_existing(collection, expr):
        drop = zp.encode_message(zp.DropPartitions(collection=collection, filters=expr))
        calls.append(
            lambda: list(client.do_action(flight.Action("zcollection.v1.drop_partitions", drop)))
        )
    for call in calls:
        rel.attempt(_timed(call))
    rel.attempt_get_schema(
        _timed(lambda: client.get_schema(flight.FlightDescriptor.for_command(query), options))
    )
    assert not Path("/tmp/zc-pwned").exists()
    world.good_read()
    world.unchanged()


# -- symbolic links leading out of the root ------------------------------------------------
#: ssh values of the collections outside the root: never seen through the server.
OUTSIDE = 1000.0


@pytest.fixture
def linked(rel: Any, tmp_path: Path) -> dict[str, Path]:
    """A served root whose collections hold links to collections outside the root, at every
    level: a partition, a folder above partitions, a config file, a chunk, a view."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    victim = outside / "victim"
    rel.make_alti(str(victim), months=3, offset=OUTSIDE)
    View.create(
        zc.open_store(str(outside / "view")),
        base=zc.open_collection(str(victim), mode="rw"),
        variables=[
            zc.VariableSchema("ssh2", dtype=numpy.dtype("float32"), dimensions=("time", "x_ac"))
        ],
        reference=str(victim),
    )
    rel.make_alti(str(root / "alti"), months=2)
    (root / "alti" / "year=2024" / "month=03").symlink_to(victim / "year=2024" / "month=03")
    (root / "alti" / "_views").mkdir()
    (root / "alti" / "_views" / "peek").symlink_to(outside / "view")
    rel.make_alti(str(root / "deep"), months=1, catalog=False)
    shutil.rmtree(root / "deep" / "year=2024")
    (root / "deep" / "year=2024").symlink_to(victim / "year=2024")
    rel.make_alti(str(root / "chunky"), months=1, catalog=False)
    chunk = root / "chunky" / "year=2024" / "month=01" / "ssh" / "c" / "0" / "0"
    chunk.unlink()
    chunk.symlink_to(victim / "year=2024" / "month=01" / "ssh" / "c" / "0" / "0")
    (root / "cfg").mkdir()
    (root / "cfg" / "_zcollection.json").symlink_to(victim / "_zcollection.json")
    return {"root": root, "outside": outside, "tmp": tmp_path}


def _no_outside_data(table: pa.Table) -> None:
    if "ssh" in table.column_names:
        values = numpy.asarray(table.column("ssh").combine_chunks().storage.flatten())
        assert not (numpy.nan_to_num(values) > OUTSIDE / 2).any(), "data from outside the root"


def test_symbolic_links_out_of_the_root_are_never_followed(
    rel: Any, spawn: Any, linked: dict[str, Path]
) -> None:
    server = spawn("--root", str(linked["root"]), "--port", "0")
    client = server.connect()
    before = rel.snapshot(linked["tmp"])
    names = {i.descriptor.path[0].decode() for i in client.list_flights()}
    assert names == {"alti", "chunky", "deep"}  # cfg's configuration lies outside
    for name in ("alti", "chunky", "deep", "cfg"):
        descriptor = flight.FlightDescriptor.for_path(name)
        info = None
        if name != "cfg":
            info = client.get_flight_info(descriptor)
        else:
            assert (
                rel.attempt(lambda d=descriptor: client.get_flight_info(d))["kind"] == "not_found"
            )
        for endpoint in info.endpoints if info is not None else []:
            _no_outside_data(client.do_get(endpoint.ticket).read_all())
        query = zp.encode_command(zp.Query(collection=name))
        outcome = rel.attempt(lambda q=query: _no_outside_data(rel.read_all(client, q)))
        assert outcome is None or name == "cfg", outcome
    # the linked partitions are not partitions of the collections
    info = client.get_flight_info(flight.FlightDescriptor.for_path("alti"))
    assert info.total_records == 60 * rel.PER_DAY
    assert not client.get_flight_info(flight.FlightDescriptor.for_path("deep")).endpoints[:-1]
    for descriptor in (
        flight.FlightDescriptor.for_path("alti", "year=2024/month=03"),
        flight.FlightDescriptor.for_path("deep", "year=2024/month=01"),
    ):
        assert rel.attempt(lambda d=descriptor: client.get_flight_info(d))["kind"] == "not_found"
    # the view folder linked outside is no view
    view = zp.encode_command(zp.Query(collection="alti", view="peek"))
    assert rel.attempt(lambda: rel.read_all(client, view))["kind"] == "not_found"
    assert list(rel_action(client, "list_views", zp.ListViews(collection="alti")).views) == []
    # writes through the links: refused, or the link is replaced; nothing outside changes
    march = zp.dataset_to_table(rel.alti_dataset("2024-03-10", 2), axis="time")
    for name in ("alti", "deep", "chunky"):
        for merge in ("", "concat"):
            descriptor = flight.FlightDescriptor.for_command(
                zp.encode_command(zp.Insert(collection=name, merge=merge))
            )
            rel.attempt(lambda d=descriptor: rel.put(client, d, march.schema, march.to_batches()))
        for verb, message in (
            ("drop_partitions", zp.DropPartitions(collection=name, all=True)),
            ("repair_catalog", zp.RepairCatalog(collection=name)),
            ("delete_collection", zp.DeleteCollection(collection=name)),
        ):
            rel.attempt(lambda v=verb, m=message: rel_action(client, v, m))
    for verb, message in (
        ("create_view", zp.CreateView(collection="alti", view="peek", variables=[VARIABLE])),
        ("create_view", zp.CreateView(collection="alti", view="peek", overwrite=True)),
        ("delete_collection", zp.DeleteCollection(collection="cfg")),
        ("create_collection", zp.CreateCollection(collection="cfg", overwrite=True)),
    ):
        rel.attempt(lambda v=verb, m=message: rel_action(client, v, m))
    after = rel.snapshot(linked["tmp"])
    outside = {k: v for k, v in after.items() if k.startswith("outside")}
    assert outside == {k: v for k, v in before.items() if k.startswith("outside")}
    assert server.alive()
    client.close()


def rel_action(client: flight.FlightClient, verb: str, message: Any) -> Any:
    spec = zp.ACTIONS[zp.action_name(verb)]
    results = list(client.do_action(flight.Action(spec.name, zp.encode_message(message))))
    return zp.decode_message(results[0].body.to_pybytes(), spec.result)
