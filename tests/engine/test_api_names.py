"""Every name documented in ``spec/zcollection-api-reference.txt`` exists on the engine.

The reference is parsed for its entries (``class zcollection.X(...)``, ``zcollection.x.y(...)``,
``exception zcollection.X``, ``async zcollection.aio.f(...)``, module attributes) and the
members listed under each class (methods, ``classmethod``/``async`` methods, ``property``
and data fields). Each becomes one test case: the name must resolve, be of the documented
kind, and accept the documented parameters (same names, order, kinds and optional-ness;
extra keyword-only parameters with defaults are allowed).

The second half checks that documented errors are raised where the reference says, for the
cases the collection behaviour suite does not already cover.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from pathlib import Path
from typing import Any, NamedTuple

import numpy
import pytest
import zcollection as zc

REFERENCE = (
    Path(__file__).resolve().parents[3] / "shared" / "spec" / "zcollection-api-reference.txt"
)
if not REFERENCE.is_file():  # the reference lives outside the repository
    pytest.skip(f"{REFERENCE} is not available", allow_module_level=True)
_TOP = re.compile(
    r"^(?P<prefix>(?:class|exception|async)\s+)?(?P<name>zcollection(?:\.\w+)+)"
    r"(?P<params>\(.*\))?(?:\[source\])?#$"
)
_PROPERTY = re.compile(r"^(?:abstract\s+)?property\s+(?P<name>\w+)(?::.*)?#$")
_FIELD = re.compile(r"^(?P<name>[a-z_]\w*):\s.*#$")
_MEMBER = re.compile(
    r"^(?P<prefix>(?:(?:abstractmethod|classmethod|staticmethod|async)\s+)*)"
    r"(?P<name>[a-z_]\w*)(?P<params>\(.*\))?(?:\[source\])?#$"
)


class Entry(NamedTuple):
    name: str  # dotted, e.g. "zcollection.Collection.insert"
    kind: str  # class, exception, function, async, attribute, method, async method,
    #            classmethod, property, field
    params: str | None  # "(dataset, *, overwrite=True, merge=None)" or None
    owner: str | None  # dotted name of the class of a member


def parse_reference(text: str) -> list[Entry]:
    """Return the documented entries, in reference order."""
    entries: list[Entry] = []
    owner: str | None = None
    for line in text.splitlines():
        line = line.rstrip()
        if not line.endswith("#"):
            continue
        top = _TOP.match(line)
        if top:
            prefix = (top["prefix"] or "").strip()
            kind = prefix or ("function" if top["params"] is not None else "attribute")
            entries.append(Entry(top["name"], kind, top["params"], None))
            owner = top["name"] if kind in ("class", "exception") else None
            continue
        if owner is None:
            continue
        prop, field = _PROPERTY.match(line), _FIELD.match(line)
        member = _MEMBER.match(line)
        if prop:
            entries.append(Entry(f"{owner}.{prop['name']}", "property", None, owner))
        elif field:
            entries.append(Entry(f"{owner}.{field['name']}", "field", None, owner))
        elif member:
            words = member["prefix"].split()
            if "classmethod" in words:
                kind = "classmethod"
            elif "async" in words:
                kind = "async method"
            else:
                kind = "method" if member["params"] is not None else "field"
            entries.append(Entry(f"{owner}.{member['name']}", kind, member["params"], owner))
        else:
            owner = None  # a section heading ends the class
    return entries


ENTRIES = parse_reference(REFERENCE.read_text(encoding="utf-8"))


def test_the_reference_parses_into_every_section():
    names = {e.name for e in ENTRIES}
    kinds = {e.kind for e in ENTRIES}
    assert len(ENTRIES) > 180
    assert kinds == {
        "class",
        "exception",
        "function",
        "async",
        "attribute",
        "method",
        "async method",
        "classmethod",
        "property",
        "field",
    }
    for expected in (
        "zcollection.Schema",
        "zcollection.SchemaBuilder.with_variable",
        "zcollection.DatasetSchema.dim_chunks",
        "zcollection.DatasetSchema.format_version",
        "zcollection.Collection.insert_async",
        "zcollection.merge.upsert_within",
        "zcollection.partitioning.GroupedSequence.decode",
        "zcollection.partitioning.compile_filter",
        "zcollection.view.View.create",
        "zcollection.indexing.parquet.Indexer.lookup",
        "zcollection.Group.update_attributes",
        "zcollection.Variable.schema",
        "zcollection.codecs.DEFAULT_PROFILE",
        "zcollection.Store.root_uri",
        "zcollection.ReadOnlyError",
        "zcollection.aio.open_collection",
    ):
        assert expected in names, expected
    assert not any(e.name.startswith("zcollection.Store.") and e.kind == "field" for e in ENTRIES)


def resolve(dotted: str) -> Any:
    """Import the longest module prefix of ``dotted``, then walk attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part)
        return obj
    raise ModuleNotFoundError(dotted)


def _split_params(text: str) -> list[str]:
    """Split ``(a, b=(1, 2), *, c='x')`` at top-level commas."""
    pieces: list[str] = []
    depth, current, quote = 0, "", ""
    for char in text[1:-1]:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{<":
            depth += 1
        elif char in ")]}>":
            depth -= 1
        if char == "," and depth == 0 and not quote:
            pieces.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        pieces.append(current.strip())
    return pieces


def documented_parameters(params: str) -> list[tuple[str, str, bool]]:
    """Return ``(name, kind, has_default)`` of each documented parameter."""
    result, keyword_only = [], False
    for piece in _split_params(params):
        if piece == "*":
            keyword_only = True
        elif piece.startswith("**"):
            result.append((piece[2:], "VAR_KEYWORD", False))
        elif piece.startswith("*"):
            result.append((piece[1:], "VAR_POSITIONAL", False))
            keyword_only = True
        else:
            name, equals, _ = piece.partition("=")
            kind = "KEYWORD_ONLY" if keyword_only else "POSITIONAL_OR_KEYWORD"
            result.append((name.strip(), kind, bool(equals)))
    return result


def check_signature(entry: Entry, obj: Any) -> None:
    if entry.params is None or entry.params in ("(*args, **kwargs)", "(*values)"):
        return  # no parameters documented, or the generic signature of a protocol / enum
    signature = inspect.signature(obj)
    actual = [
        (p.name, p.kind.name, p.default is not inspect.Parameter.empty)
        for p in signature.parameters.values()
    ]
    if entry.kind in ("method", "async method") and actual and actual[0][0] == "self":
        actual = actual[1:]
    expected = documented_parameters(entry.params)
    assert actual[: len(expected)] == expected, f"{entry.name}{signature} vs {entry.params}"
    for name, kind, has_default in actual[len(expected) :]:
        assert kind == "VAR_KEYWORD" or (kind == "KEYWORD_ONLY" and has_default), (
            f"{entry.name}: undocumented required parameter {name!r}"
        )


def check_member(entry: Entry) -> None:
    assert entry.owner is not None
    cls = resolve(entry.owner)
    member = entry.name.rsplit(".", 1)[1]
    if entry.kind == "field":
        fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else ()
        slots = {s for klass in cls.__mro__ for s in getattr(klass, "__slots__", ())}
        annotated = {a for klass in cls.__mro__ for a in vars(klass).get("__annotations__", {})}
        known = member in fields or member in slots or hasattr(cls, member)
        if inspect.isabstract(cls):
            known = known or member in annotated  # set by every concrete subclass
        assert known, f"{entry.name} is not a field of {cls}"
        return
    static = inspect.getattr_static(cls, member)
    if entry.kind == "property":
        assert isinstance(static, property), f"{entry.name} is not a property"
        return
    if entry.kind == "classmethod":
        assert isinstance(static, classmethod), f"{entry.name} is not a classmethod"
    else:
        assert callable(static) and not isinstance(static, property), entry.name
    function = getattr(cls, member)
    if entry.kind == "async method":
        assert inspect.iscoroutinefunction(function), f"{entry.name} is not async"
    check_signature(entry, function)


def check_entry(entry: Entry) -> None:
    if entry.owner is not None:
        check_member(entry)
        return
    obj = resolve(entry.name)
    if entry.kind == "class":
        assert inspect.isclass(obj), entry.name
    elif entry.kind == "exception":
        assert inspect.isclass(obj) and issubclass(obj, zc.ZCollectionError), entry.name
    elif entry.kind == "async":
        assert inspect.iscoroutinefunction(obj), f"{entry.name} is not a coroutine function"
    elif entry.kind == "function":
        assert callable(obj) and not inspect.isclass(obj), entry.name
        assert not inspect.iscoroutinefunction(obj), f"{entry.name} must be synchronous"
    if entry.kind != "attribute":
        check_signature(entry, obj)


@pytest.mark.parametrize("entry", [pytest.param(e, id=e.name) for e in ENTRIES])
def test_documented_name_exists(entry: Entry) -> None:
    check_entry(entry)


def test_every_documented_name_exists() -> None:
    """One summary: lists every missing name at once."""
    problems = []
    for entry in ENTRIES:
        try:
            check_entry(entry)
        except (AssertionError, AttributeError, ImportError, TypeError, ValueError) as exc:
            problems.append(f"{entry.name}: {type(exc).__name__}: {exc}")
    assert problems == []


def test_checks_can_fail() -> None:
    """The checker rejects what is not there or not as documented."""
    bad = [
        Entry("zcollection.NoSuchThing", "class", None, None),
        Entry("zcollection.Collection.no_such_method", "method", "()", "zcollection.Collection"),
        Entry(
            "zcollection.Collection.insert", "method", "(dataset, merge)", "zcollection.Collection"
        ),
        Entry("zcollection.Collection.query", "property", None, "zcollection.Collection"),
        Entry(
            "zcollection.Collection.insert",
            "async method",
            "(dataset, *, overwrite=True, merge=None)",
            "zcollection.Collection",
        ),
        Entry("zcollection.open_collection", "async", "(path, *, mode='r')", None),
        Entry("zcollection.Dimension.width", "field", None, "zcollection.Dimension"),
        Entry("zcollection.Variable", "exception", None, None),
        Entry("zcollection.merge.MergeCallable", "function", "()", None),
    ]
    for entry in bad:
        with pytest.raises((AssertionError, AttributeError, ImportError)):
            check_entry(entry)


def test_top_level_names_are_in_all() -> None:
    for entry in ENTRIES:
        parts = entry.name.split(".")
        if entry.owner is None and len(parts) == 2:
            assert parts[1] in zc.__all__, entry.name
    for namespace in ("codecs", "merge", "partitioning", "aio"):
        assert namespace in zc.__all__


# -- documented errors not covered by the collection behaviour suite --------------------------


def _schema() -> zc.DatasetSchema:
    return (
        zc.Schema()
        .with_dimension("time")
        .with_dimension("x", size=2)
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .with_variable("v", dtype="float32", dimensions=("time", "x"))
        .with_group("/g/h")
        .with_variable("w", dtype="int8", dimensions=("time",), group="/g/h")
        .build()
    )


def test_schema_documented_errors() -> None:
    schema = _schema()
    with pytest.raises(zc.SchemaError):
        schema.select(["time", "nope"])
    with pytest.raises(zc.SchemaError):
        schema.with_partition_axis("x_missing")
    with pytest.raises(zc.SchemaError):
        schema.with_partition_axis("x")  # not the axis: "time" is unbounded
    with pytest.raises(KeyError):
        schema.get_group("/g/nope")
    assert schema.get_group("/g/h").name == "h"
    unbounded = (
        zc.Schema()
        .with_dimension("time")
        .with_dimension("hz20")
        .with_variable("a", dtype="f4", dimensions=("time", "hz20"))
        .build()
    )
    with pytest.raises(zc.SchemaError):
        unbounded.with_partition_axis("time")


def test_partitioning_documented_errors() -> None:
    date = zc.partitioning.Date("time", resolution="M")
    sequence = zc.partitioning.Sequence(("cycle", "pass"), dimension="n")
    grouped = zc.partitioning.GroupedSequence(("cycle", "pass"), dimension="n", size=10)
    for partitioning, bad in (
        (date, "year=2024"),
        (date, "year=2024/month=13"),
        (date, "month=03/year=2024"),
        (date, "year=2024/month=3"),
        (sequence, "cycle=1"),
        (sequence, "cycle=1/pass=x"),
        (sequence, "cycle=01/pass=2"),
        (grouped, "cycle=1/pass=15"),
    ):
        with pytest.raises(zc.PartitionError):
            partitioning.decode(bad)
    assert date.decode("year=2024/month=03") == (("year", 2024), ("month", 3))
    assert grouped.decode("cycle=1/pass=20") == (("cycle", 1), ("pass", 20))
    for expr in ("year ==", "import os", "year.real", "(lambda: 1)()", "year == 1; x"):
        with pytest.raises(zc.ExpressionError):
            zc.partitioning.compile_filter(expr)
    assert zc.partitioning.compile_filter(None)({"year": 1}) is True
    assert zc.partitioning.compile_filter("")({"year": 1}) is True


def test_merge_documented_errors() -> None:
    schema = _schema().select(["time", "v"])
    ds = zc.Dataset(
        schema,
        [
            zc.Variable(schema.variables["time"], numpy.arange(3).astype("M8[ns]")),
            zc.Variable(schema.variables["v"], numpy.zeros((3, 2), "float32")),
        ],
    )
    for strategy in (zc.merge.time_series, zc.merge.upsert):
        with pytest.raises(ValueError):
            strategy(ds, ds, axis="missing", partitioning_dim="time")
    assert isinstance(zc.merge.upsert_within(numpy.timedelta64(1, "s")), zc.merge.MergeCallable)


def test_codecs_documented_errors_and_returns() -> None:
    with pytest.raises(KeyError):
        zc.codecs.profile("no-such-profile")
    with pytest.raises(KeyError):
        zc.codecs.auto_codecs(numpy.dtype("f4"), "no-such-profile")
    names = zc.codecs.profile_names()
    assert isinstance(names, tuple)
    assert zc.codecs.DEFAULT_PROFILE in names
    assert {"local-fast", "cloud-balanced", "cloud-cold"} <= set(names)
    assert zc.codecs.profile() == zc.codecs.profile(zc.codecs.DEFAULT_PROFILE)
    assert isinstance(zc.codecs.auto_codecs(numpy.dtype("f4")), zc.codecs.CodecStack)
    assert isinstance(zc.Schema(), zc.SchemaBuilder)


def test_data_model_documented_errors() -> None:
    schema = _schema()
    time = zc.Variable(schema.variables["time"], numpy.arange(3).astype("M8[ns]"))
    with pytest.raises(ValueError):
        zc.Variable(schema.variables["v"], numpy.zeros(3, "float32"))  # 1-D data, 2-D schema
    group = zc.Group(schema, [time])
    with pytest.raises(ValueError):
        group.add_variable(time)  # duplicate
    with pytest.raises(ValueError):
        group.add_variable(zc.Variable(schema.variables["v"], numpy.zeros((4, 2), "float32")))
    child = zc.Group(schema.get_group("/g"), name="g")
    group.add_group(child)
    with pytest.raises(ValueError):
        group.add_group(zc.Group(schema.get_group("/g"), name="g"))
    ds = zc.Dataset(schema, [time])
    with pytest.raises(KeyError):
        ds.get_group("/nope")
    with pytest.raises(KeyError):
        ds.get_variable("/nope")
    pytest.importorskip("xarray")
    with pytest.raises(KeyError):
        ds.to_xarray("/nope")


def test_documented_exception_tree() -> None:
    for entry in ENTRIES:
        if entry.kind == "exception":
            assert issubclass(resolve(entry.name), zc.ZCollectionError)
    # repair_catalog documents RuntimeError; merge names KeyError; select SchemaError
    assert issubclass(zc.CatalogDisabledError, RuntimeError)
    assert issubclass(zc.SchemaError, ValueError)
    assert issubclass(zc.PartitionExistsError, zc.CollectionExistsError)


def test_collection_documented_errors(tmp_path: Path) -> None:
    schema = _schema()
    part = zc.partitioning.Date("time", resolution="M")
    with pytest.raises(zc.SchemaError):
        zc.create_collection(str(tmp_path / "a"), schema=schema, axis="x", partitioning=part)
    with pytest.raises(zc.SchemaError):  # the dimension it splits is not the axis
        zc.create_collection(
            str(tmp_path / "b"),
            schema=schema,
            axis="time",
            partitioning=zc.partitioning.Date("time", resolution="M", dimension="x"),
        )
    with pytest.raises(zc.PartitionError):  # not a datetime64 key variable
        zc.create_collection(
            str(tmp_path / "c"),
            schema=schema,
            axis="time",
            partitioning=zc.partitioning.Sequence(("time",), dimension="time"),
        )
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()
    assert not (tmp_path / "c").exists()
    col = zc.create_collection(str(tmp_path / "ok"), schema=schema, axis="time", partitioning=part)
    with pytest.raises(zc.CollectionExistsError):
        zc.create_collection(str(tmp_path / "ok"), schema=schema, axis="time", partitioning=part)
    with pytest.raises(zc.ReadOnlyError):
        zc.create_collection(
            zc.open_store(str(tmp_path / "ro"), read_only=True),
            schema=schema,
            axis="time",
            partitioning=part,
        )
    with pytest.raises(zc.SchemaError):
        col.insert("not a dataset")  # type: ignore[arg-type]
    with pytest.raises(zc.ExpressionError):
        list(col.partitions(filters="cycle == 1"))  # not a key of a Date partitioning
    assert col.query() is None
    assert col.map(len) == {}
    assert col.drop_partitions() == []
