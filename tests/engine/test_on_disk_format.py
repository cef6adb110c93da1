"""The on-disk format of ``spec/on-disk-format.md`` (format_version 1), both directions.

First what this engine writes on a LocalStore, file by file; then collections built by hand
with ``zarr`` and ``json`` only, the way the reference implementation lays them out, which the
engine must open and query.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy
import pytest
import zarr
import zcollection as zc

PARTITION_KEY = "_zc_partition_key"
CONFIG_KEYS = {"format_version", "axis", "partitioning", "catalog", "schema"}
SCHEMA_KEYS = {"name", "dimensions", "variables", "groups", "attrs", "format_version"}
DIMENSION_KEYS = {"name", "size", "chunks", "shards"}
VARIABLE_KEYS = {
    "name",
    "dtype",
    "dimensions",
    "fill_value",
    "codecs",
    "attrs",
    "role",
    "immutable",
}
CODECS_KEYS = {
    "array_to_array",
    "array_to_bytes",
    "bytes_to_bytes",
    "sharded",
    "shard_target_bytes",
}


def strict_json(path: Path) -> Any:
    """Parse a JSON file, refusing the non-standard NaN/Infinity tokens."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"{path} holds the non-JSON token {token}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def node(path: Path) -> dict[str, Any]:
    """Return the zarr.json document of the Zarr node at ``path``."""
    doc = strict_json(path / "zarr.json")
    assert doc["zarr_format"] == 3
    return doc


def catalog_checksum(paths: list[str]) -> str:
    return "sha256:" + hashlib.sha256("".join(p + "\n" for p in paths).encode()).hexdigest()


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# -- what the engine writes ------------------------------------------------------------------


def monthly_schema() -> zc.DatasetSchema:
    return (
        zc.Schema()
        .with_dimension("time", chunks=2)
        .with_dimension("x_ac", size=2, chunks=2)
        .with_attribute("title", "format")
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",))
        .with_variable(
            "ssh",
            dtype="float32",
            dimensions=("time", "x_ac"),
            fill_value=numpy.float32("nan"),
            codecs=zc.codecs.profile("local-fast"),
            attrs={"units": "m"},
        )
        .with_variable("hot", dtype="float64", dimensions=("time",), fill_value=numpy.inf)
        .with_variable("cold", dtype="float64", dimensions=("time",), fill_value=-numpy.inf)
        .with_variable(
            "x_ac", dtype="int16", dimensions=("x_ac",), fill_value=-1, role=zc.VariableRole.AUX
        )
        .with_group("/data_01/ku", attrs={"band": "Ku"})
        .with_variable("power", dtype="<U4", dimensions=("time",), group="/data_01/ku")
        .build()
    )


def monthly_dataset(schema: zc.DatasetSchema, start: str, rows: int) -> zc.Dataset:
    time = numpy.datetime64(start, "ns") + numpy.arange(rows) * numpy.timedelta64(1, "D")
    ku = schema.get_group("/data_01/ku")
    return zc.Dataset(
        schema,
        {
            "time": zc.Variable(schema.variables["time"], time),
            "ssh": zc.Variable(
                schema.variables["ssh"], numpy.arange(rows * 2, dtype="float32").reshape(rows, 2)
            ),
            "hot": zc.Variable(schema.variables["hot"], numpy.arange(rows, dtype="float64")),
            "cold": zc.Variable(schema.variables["cold"], -numpy.arange(rows, dtype="float64")),
            "x_ac": zc.Variable(schema.variables["x_ac"], numpy.array([10, 20], dtype="int16")),
            "data_01/ku/power": zc.Variable(
                ku.variables["power"], numpy.array([f"p{i}" for i in range(rows)], dtype="<U4")
            ),
        },
    )


@pytest.fixture
def written(tmp_path: Path) -> Path:
    """A collection written by the engine: Feb 28 .. Mar 3 2024, catalog enabled."""
    root = tmp_path / "written"
    schema = monthly_schema()
    col = zc.create_collection(
        str(root),
        schema=schema,
        axis="time",
        partitioning=zc.partitioning.Date("time", resolution="M"),
        catalog_enabled=True,
    )
    assert col.insert(monthly_dataset(schema, "2024-02-28", 5)) == [
        "year=2024/month=02",
        "year=2024/month=03",
    ]
    return root


def test_tree_of_a_written_collection(written: Path) -> None:
    root_group = node(written)
    assert root_group["node_type"] == "group"
    assert root_group["attributes"] == {"title": "format"}
    assert (written / "_zcollection.json").is_file()
    assert (written / "_catalog" / "state.json").is_file()
    assert node(written / "_immutable")["node_type"] == "group"
    assert node(written / "_immutable" / "x_ac")["node_type"] == "array"
    assert node(written / "year=2024")["node_type"] == "group"  # intermediate group
    for month, key in (("02", 2), ("03", 3)):
        partition = written / "year=2024" / f"month={month}"
        doc = node(partition)
        assert doc["node_type"] == "group"
        assert doc["attributes"][PARTITION_KEY] == [["year", 2024], ["month", key]]
        for name in ("time", "ssh", "hot", "cold"):
            assert node(partition / name)["node_type"] == "array"
        assert not (partition / "x_ac").exists()  # immutable: written once, under _immutable
        # nested schema groups are real Zarr subgroups
        assert node(partition / "data_01")["node_type"] == "group"
        assert node(partition / "data_01" / "ku")["attributes"] == {"band": "Ku"}
        assert node(partition / "data_01" / "ku" / "power")["node_type"] == "array"
    assert sorted(p.name for p in written.iterdir()) == [
        "_catalog",
        "_immutable",
        "_zcollection.json",
        "year=2024",
        "zarr.json",
    ]


def test_arrays_use_default_chunk_keys_and_dimension_names(written: Path) -> None:
    ssh = written / "year=2024" / "month=03" / "ssh"
    doc = node(ssh)
    assert doc["shape"] == [3, 2]
    assert doc["dimension_names"] == ["time", "x_ac"]
    assert doc["chunk_key_encoding"] == {"name": "default", "configuration": {"separator": "/"}}
    assert doc["chunk_grid"]["configuration"]["chunk_shape"] == [2, 2]
    assert doc["fill_value"] == "NaN"
    assert doc["attributes"] == {"units": "m"}
    assert [c["name"] for c in doc["codecs"]] == ["bytes", "zstd"]
    assert (ssh / "c" / "0" / "0").is_file()
    assert (ssh / "c" / "1" / "0").is_file()
    assert (written / "year=2024" / "month=03" / "time" / "c" / "1").is_file()
    assert (written / "_immutable" / "x_ac" / "c" / "0").is_file()


def test_config_file_layout(written: Path) -> None:
    config = strict_json(written / "_zcollection.json")
    assert set(config) == CONFIG_KEYS
    assert config["format_version"] == 1
    assert config["axis"] == "time"
    assert config["partitioning"] == {
        "name": "date",
        "variable": "time",
        "resolution": "M",
        "dimension": "time",
    }
    assert config["catalog"] == {"enabled": True}
    schema = config["schema"]
    assert set(schema) == SCHEMA_KEYS
    assert schema["name"] == "/"
    assert schema["format_version"] == 1
    assert schema["attrs"] == {"title": "format"}
    assert schema["dimensions"] == [
        {"name": "time", "size": None, "chunks": 2, "shards": None},
        {"name": "x_ac", "size": 2, "chunks": 2, "shards": None},
    ]
    variables = {v["name"]: v for v in schema["variables"]}
    for variable in variables.values():
        assert set(variable) == VARIABLE_KEYS
        assert variable["role"] in ("user", "filler", "aux")
        codecs = variable["codecs"]
        assert set(codecs) == CODECS_KEYS
        for codec in [*codecs["array_to_array"], *codecs["bytes_to_bytes"]]:
            assert set(codec) == {"name", "configuration"}
        assert codecs["array_to_bytes"] is None or set(codecs["array_to_bytes"]) == {
            "name",
            "configuration",
        }
    assert {n: v["dtype"] for n, v in variables.items()} == {
        "time": "<M8[ns]",
        "ssh": "<f4",
        "hot": "<f8",
        "cold": "<f8",
        "x_ac": "<i2",
    }
    assert variables["ssh"]["fill_value"] == "NaN"
    assert variables["hot"]["fill_value"] == "Infinity"
    assert variables["cold"]["fill_value"] == "-Infinity"
    assert variables["x_ac"]["fill_value"] == -1
    assert variables["time"]["fill_value"] is None
    assert variables["x_ac"]["role"] == "aux"
    assert variables["ssh"]["attrs"] == {"units": "m"}
    assert {n: v["immutable"] for n, v in variables.items()} == {
        "time": False,
        "ssh": False,
        "hot": False,
        "cold": False,
        "x_ac": True,
    }
    assert variables["ssh"]["codecs"]["sharded"] is False
    assert variables["ssh"]["codecs"]["bytes_to_bytes"] == [
        {"name": "zstd", "configuration": {"level": 3, "checksum": False}}
    ]
    (data_01,) = schema["groups"]
    assert data_01["name"] == "data_01"
    (ku,) = data_01["groups"]
    assert set(ku) == SCHEMA_KEYS - {"format_version"}
    assert ku["attrs"] == {"band": "Ku"}
    (power,) = ku["variables"]
    assert power["dtype"] == "<U4"
    assert power["dimensions"] == ["time"]


def test_catalog_file_layout(written: Path) -> None:
    state = strict_json(written / "_catalog" / "state.json")
    assert set(state) == {"format_version", "paths", "checksum"}
    assert state["format_version"] == 1
    assert state["paths"] == ["year=2024/month=02", "year=2024/month=03"]
    assert state["checksum"] == catalog_checksum(state["paths"])
    # drop one partition, insert two more: still sorted, unique, checksummed
    col = zc.open_collection(str(written), mode="rw")
    col.drop_partitions(filters="month == 2")
    col.insert(monthly_dataset(col.schema, "2023-12-31", 2))
    col.insert(monthly_dataset(col.schema, "2023-12-30", 1))
    state = strict_json(written / "_catalog" / "state.json")
    assert state["paths"] == ["year=2023/month=12", "year=2024/month=01", "year=2024/month=03"]
    assert state["checksum"] == catalog_checksum(state["paths"])


def test_written_collection_reads_back_with_plain_zarr(written: Path) -> None:
    group = zarr.open_group(str(written / "year=2024" / "month=03"), mode="r", zarr_format=3)
    assert group.attrs[PARTITION_KEY] == [["year", 2024], ["month", 3]]
    numpy.testing.assert_array_equal(group["ssh"][:], numpy.arange(4, 10).reshape(3, 2))
    numpy.testing.assert_array_equal(group["data_01/ku/power"][:], ["p2", "p3", "p4"])
    times = group["time"][:]
    assert times.dtype == numpy.dtype("M8[ns]")
    assert str(times[0]) == "2024-03-01T00:00:00.000000000"
    immutable = zarr.open_array(str(written / "_immutable" / "x_ac"), mode="r", zarr_format=3)
    numpy.testing.assert_array_equal(immutable[:], [10, 20])


def test_sharded_profile_writes_a_sharding_codec(tmp_path: Path) -> None:
    schema = (
        zc.Schema()
        .with_dimension("num", chunks=2, shards=4)
        .with_variable("cycle", dtype="int32", dimensions=("num",))
        .with_variable("v", dtype="float64", dimensions=("num",))
        .build()
    )
    root = tmp_path / "sharded"
    col = zc.create_collection(
        str(root),
        schema=schema,
        axis="num",
        partitioning=zc.partitioning.Sequence(("cycle",), dimension="num"),
    )
    col.insert(
        zc.Dataset(
            schema,
            [
                zc.Variable(schema.variables["cycle"], numpy.zeros(8, "int32")),
                zc.Variable(schema.variables["v"], numpy.arange(8.0)),
            ],
        )
    )
    doc = node(root / "cycle=0" / "v")
    (codec,) = [c for c in doc["codecs"] if c["name"] == "sharding_indexed"]
    assert codec["configuration"]["chunk_shape"] == [2]
    assert doc["chunk_grid"]["configuration"]["chunk_shape"] == [4]
    assert sorted(os.listdir(root / "cycle=0" / "v" / "c")) == ["0", "1"]
    result = zc.open_collection(str(root)).query()
    assert result is not None
    numpy.testing.assert_array_equal(result["v"].to_numpy(), numpy.arange(8.0))


@pytest.mark.parametrize(
    ("resolution", "path"),
    [
        ("Y", "year=2024"),
        ("M", "year=2024/month=03"),
        ("D", "year=2024/month=03/day=05"),
        ("h", "year=2024/month=03/day=05/hour=07"),
        ("m", "year=2024/month=03/day=05/hour=07/minute=08"),
        ("s", "year=2024/month=03/day=05/hour=07/minute=08/second=09"),
    ],
)
def test_date_partition_paths(tmp_path: Path, resolution: str, path: str) -> None:
    schema = (
        zc.Schema()
        .with_dimension("t")
        .with_variable("time", dtype="datetime64[ms]", dimensions=("t",))
        .build()
    )
    root = tmp_path / resolution
    partitioning = zc.partitioning.Date("time", resolution=resolution, dimension="t")
    col = zc.create_collection(str(root), schema=schema, axis="t", partitioning=partitioning)
    time = numpy.array(["2024-03-05T07:08:09.123"], dtype="M8[ms]")
    assert col.insert(zc.Dataset(schema, [zc.Variable(schema.variables["time"], time)])) == [path]
    parts = path.split("/")
    expected = [[p.split("=")[0], int(p.split("=")[1])] for p in parts]
    assert node(root / path)["attributes"][PARTITION_KEY] == expected
    for depth in range(1, len(parts)):
        assert node(root.joinpath(*parts[:depth]))["node_type"] == "group"
    config = strict_json(root / "_zcollection.json")
    assert config["partitioning"] == {
        "name": "date",
        "variable": "time",
        "resolution": resolution,
        "dimension": "t",
    }


def _sequence_collection(root: Path, partitioning: Any) -> zc.Collection:
    schema = (
        zc.Schema()
        .with_dimension("num_lines")
        .with_variable("cycle", dtype="int16", dimensions=("num_lines",))
        .with_variable("pass", dtype="uint16", dimensions=("num_lines",))
        .build()
    )
    return zc.create_collection(
        str(root), schema=schema, axis="num_lines", partitioning=partitioning
    )


def _insert_lines(col: zc.Collection, cycles: list[int], passes: list[int]) -> list[str]:
    schema = col.schema
    return col.insert(
        zc.Dataset(
            schema,
            [
                zc.Variable(schema.variables["cycle"], numpy.array(cycles, "int16")),
                zc.Variable(schema.variables["pass"], numpy.array(passes, "uint16")),
            ],
        )
    )


def test_sequence_partition_paths_and_json(tmp_path: Path) -> None:
    root = tmp_path / "seq"
    col = _sequence_collection(
        root, zc.partitioning.Sequence(("cycle", "pass"), dimension="num_lines")
    )
    written = _insert_lines(col, [31, 31, -2, 5], [100, 7, 3, 1000])
    assert written == [
        "cycle=-2/pass=3",
        "cycle=5/pass=1000",
        "cycle=31/pass=7",
        "cycle=31/pass=100",
    ]
    assert node(root / "cycle=31" / "pass=100")["attributes"][PARTITION_KEY] == [
        ["cycle", 31],
        ["pass", 100],
    ]
    assert node(root / "cycle=-2")["node_type"] == "group"
    config = strict_json(root / "_zcollection.json")
    assert config["axis"] == "num_lines"
    assert config["partitioning"] == {
        "name": "sequence",
        "variables": ["cycle", "pass"],
        "dimension": "num_lines",
    }


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (0, ["cycle=1/pass=0", "cycle=1/pass=30", "cycle=2/pass=-10"]),
        (5, ["cycle=1/pass=-5", "cycle=1/pass=35", "cycle=2/pass=-5"]),
    ],
)
def test_grouped_sequence_partition_paths_and_json(
    tmp_path: Path, start: int, expected: list[str]
) -> None:
    root = tmp_path / f"grouped{start}"
    partitioning = zc.partitioning.GroupedSequence(
        ("cycle", "pass"), dimension="num_lines", size=10, start=start
    )
    schema = (
        zc.Schema()
        .with_dimension("num_lines")
        .with_variable("cycle", dtype="int16", dimensions=("num_lines",))
        .with_variable("pass", dtype="int16", dimensions=("num_lines",))
        .build()
    )
    col = zc.create_collection(
        str(root), schema=schema, axis="num_lines", partitioning=partitioning
    )
    # (value - start) // size * size + start
    passes = [37, 3, 39, -3]
    cycles = [1, 1, 1, 2]
    ds = zc.Dataset(
        schema,
        [
            zc.Variable(schema.variables["cycle"], numpy.array(cycles, "int16")),
            zc.Variable(schema.variables["pass"], numpy.array(passes, "int16")),
        ],
    )
    assert col.insert(ds) == expected
    assert list(zc.open_collection(str(root)).partitions()) == expected
    config = strict_json(root / "_zcollection.json")
    assert config["partitioning"] == {
        "name": "grouped-sequence",
        "variables": ["cycle", "pass"],
        "dimension": "num_lines",
        "size": 10,
        "start": start,
    }


# -- collections built by hand, the way the reference lays them out ------------------------


def _variable(
    name: str,
    dtype: str,
    dimensions: list[str],
    fill_value: Any = None,
    *,
    immutable: bool = False,
) -> dict[str, Any]:
    return {
        "name": name,
        "dtype": dtype,
        "dimensions": dimensions,
        "fill_value": fill_value,
        "codecs": {
            "array_to_array": [],
            "array_to_bytes": {"name": "bytes", "configuration": {"endian": "little"}},
            "bytes_to_bytes": [{"name": "zstd", "configuration": {"level": 3, "checksum": False}}],
            "sharded": False,
            "shard_target_bytes": None,
        },
        "attrs": {"units": "m"} if name == "ssh" else {},
        "role": "user",
        "immutable": immutable,
    }


def reference_config(*, catalog: bool, version: int | None = 1) -> dict[str, Any]:
    config: dict[str, Any] = {
        "axis": "time",
        "partitioning": {
            "name": "date",
            "variable": "time",
            "resolution": "M",
            "dimension": "time",
        },
        "catalog": {"enabled": catalog},
        "schema": {
            "name": "/",
            "dimensions": [
                {"name": "time", "size": None, "chunks": 2, "shards": None},
                {"name": "x_ac", "size": 3, "chunks": 3, "shards": None},
            ],
            "variables": [
                _variable("time", "<M8[ns]", ["time"]),
                _variable("ssh", "<f4", ["time", "x_ac"], "NaN"),
                _variable("x_ac", "<i2", ["x_ac"], -1, immutable=True),
            ],
            "groups": [
                {
                    "name": "data_01",
                    "dimensions": [],
                    "variables": [
                        _variable("flag", "|S2", ["time"]),
                        _variable("calib", "<f8", ["x_ac"], "NaN", immutable=True),
                    ],
                    "groups": [],
                    "attrs": {"source": "hand"},
                }
            ],
            "attrs": {"title": "by hand"},
            "format_version": 1,
        },
    }
    if version is not None:
        config = {"format_version": version, **config}
    return config


MONTHS = {
    (2024, 2): numpy.array(["2024-02-27T12", "2024-02-29T23"], dtype="M8[ns]"),
    (2024, 3): numpy.array(["2024-03-01", "2024-03-15", "2024-03-31T06"], dtype="M8[ns]"),
    (2023, 12): numpy.array(["2023-12-31T23:59:59"], dtype="M8[ns]"),
}


def ssh_of(times: Any) -> Any:
    return (numpy.arange(times.size * 3, dtype="float32") + times[0].astype("int64") % 97).reshape(
        -1, 3
    )


def build_by_hand(
    root: Path,
    *,
    catalog: bool = False,
    version: int | None = 1,
    incomplete: bool = False,
    sharded: bool = False,
) -> list[str]:
    """Lay out a collection with zarr and json only; return its partition paths."""
    top = zarr.open_group(str(root), mode="w", zarr_format=3, attributes={"title": "by hand"})
    (root / "_zcollection.json").write_text(
        json.dumps(reference_config(catalog=catalog, version=version), indent=2),
        encoding="utf-8",
    )
    immutable = top.create_group("_immutable")
    x_ac = immutable.create_array(
        "x_ac", shape=(3,), dtype="int16", chunks=(3,), fill_value=-1, dimension_names=["x_ac"]
    )
    x_ac[:] = numpy.array([7, 8, 9], dtype="int16")
    calib = immutable.create_group("data_01", attributes={"source": "hand"}).create_array(
        "calib", shape=(3,), dtype="float64", chunks=(3,), dimension_names=["x_ac"]
    )
    calib[:] = numpy.array([0.5, numpy.nan, -1.5])
    paths = []
    for (year, month), times in MONTHS.items():
        path = f"year={year:04d}/month={month:02d}"
        years = top.require_group(f"year={year:04d}")
        group = years.create_group(
            f"month={month:02d}", attributes={PARTITION_KEY: [["year", year], ["month", month]]}
        )
        time = group.create_array(
            "time",
            shape=times.shape,
            dtype="M8[ns]",
            chunks=(2,),
            fill_value=numpy.datetime64("NaT", "ns"),
            dimension_names=["time"],
        )
        time[:] = times
        ssh = group.create_array(
            "ssh",
            shape=(times.size, 3),
            dtype="float32",
            chunks=(1, 3) if sharded else (2, 3),
            shards=(2, 3) if sharded else None,
            fill_value=numpy.float32("nan"),
            dimension_names=["time", "x_ac"],
            attributes={"units": "m"},
        )
        ssh[:] = ssh_of(times)
        sub = group.create_group("data_01", attributes={"source": "hand"})
        flag = sub.create_array(
            "flag", shape=times.shape, dtype="S2", chunks=(2,), dimension_names=["time"]
        )
        flag[:] = numpy.array([b"ok"] * times.size, dtype="S2")
        paths.append(path)
    if incomplete:
        # a partition whose writer crashed before writing the key attribute
        group = top.require_group("year=2024").create_group("month=04")
        arr = group.create_array("time", shape=(1,), dtype="M8[ns]", dimension_names=["time"])
        arr[:] = numpy.array(["2024-04-02"], dtype="M8[ns]")
    paths.sort()
    if catalog:
        state = {"format_version": 1, "paths": paths, "checksum": catalog_checksum(paths)}
        (root / "_catalog").mkdir()
        (root / "_catalog" / "state.json").write_text(json.dumps(state), encoding="utf-8")
    return paths


def expected_rows(months: list[tuple[int, int]]) -> tuple[Any, Any]:
    times = numpy.concatenate([MONTHS[m] for m in months])
    ssh = numpy.concatenate([ssh_of(MONTHS[m]) for m in months])
    return times, ssh


@pytest.mark.parametrize("catalog", [False, True], ids=["no-catalog", "catalog"])
@pytest.mark.parametrize("sharded", [False, True], ids=["chunked", "sharded"])
def test_collection_built_by_hand_opens_and_queries(
    tmp_path: Path, catalog: bool, sharded: bool
) -> None:
    root = tmp_path / "hand"
    paths = build_by_hand(root, catalog=catalog, sharded=sharded)
    col = zc.open_collection(str(root))
    assert col.read_only
    assert col.catalog_enabled is catalog
    assert col.axis == "time"
    assert col.partitioning == zc.partitioning.Date("time", resolution="M")
    assert col.schema.variables["x_ac"].immutable
    assert not col.schema.variables["ssh"].immutable
    assert numpy.isnan(col.schema.variables["ssh"].fill_value)
    assert (
        list(col.partitions())
        == paths
        == [
            "year=2023/month=12",
            "year=2024/month=02",
            "year=2024/month=03",
        ]
    )
    assert list(col.partitions(filters="year == 2024 and month >= 3")) == ["year=2024/month=03"]

    result = col.query()
    assert result is not None
    times, ssh = expected_rows([(2023, 12), (2024, 2), (2024, 3)])
    numpy.testing.assert_array_equal(result["time"].to_numpy(), times)
    numpy.testing.assert_array_equal(result["ssh"].to_numpy(), ssh)
    numpy.testing.assert_array_equal(result["x_ac"].to_numpy(), [7, 8, 9])
    numpy.testing.assert_array_equal(result["/data_01/flag"].to_numpy(), [b"ok"] * 6)
    numpy.testing.assert_array_equal(result["/data_01/calib"].to_numpy(), [0.5, numpy.nan, -1.5])
    assert result.attrs == {"title": "by hand"}
    assert result["ssh"].attrs == {"units": "m"}
    assert result.get_group("/data_01").attrs == {"source": "hand"}
    for _, group in result.walk():
        assert PARTITION_KEY not in group.attrs

    feb = col.query(filters="month == 2", variables=["ssh"])
    assert feb is not None
    assert list(feb.all_variables()) == ["ssh"]
    numpy.testing.assert_array_equal(feb["ssh"].to_numpy(), expected_rows([(2024, 2)])[1])


def test_hand_built_collection_accepts_writes_in_the_same_format(tmp_path: Path) -> None:
    root = tmp_path / "hand"
    build_by_hand(root, catalog=True)
    col = zc.open_collection(str(root), mode="rw")
    extra = numpy.array(["2024-01-10"], dtype="M8[ns]")
    schema = col.schema.select(["time", "ssh", "/data_01/flag"])
    ds = zc.Dataset(
        schema,
        {
            "time": zc.Variable(schema.variables["time"], extra),
            "ssh": zc.Variable(schema.variables["ssh"], numpy.ones((1, 3), "float32")),
            "data_01/flag": zc.Variable(
                schema.get_group("/data_01").variables["flag"], numpy.array([b"no"], "S2")
            ),
        },
    )
    assert col.insert(ds) == ["year=2024/month=01"]
    state = strict_json(root / "_catalog" / "state.json")
    assert state["paths"] == [
        "year=2023/month=12",
        "year=2024/month=01",
        "year=2024/month=02",
        "year=2024/month=03",
    ]
    assert state["checksum"] == catalog_checksum(state["paths"])
    group = zarr.open_group(str(root / "year=2024" / "month=01"), mode="r", zarr_format=3)
    assert group.attrs[PARTITION_KEY] == [["year", 2024], ["month", 1]]
    numpy.testing.assert_array_equal(group["data_01/flag"][:], [b"no"])


def test_config_without_format_version_is_version_1(tmp_path: Path) -> None:
    root = tmp_path / "v1"
    build_by_hand(root, version=None)
    assert "format_version" not in json.loads((root / "_zcollection.json").read_text())
    col = zc.open_collection(str(root))
    result = col.query(filters="year == 2023")
    assert result is not None
    numpy.testing.assert_array_equal(result["time"].to_numpy(), MONTHS[(2023, 12)])


def test_config_extras_are_accepted(tmp_path: Path) -> None:
    root = tmp_path / "extras"
    build_by_hand(root)
    config = json.loads((root / "_zcollection.json").read_text())
    config["extras"] = {"writer": "reference", "nested": {"a": [1, 2]}}
    (root / "_zcollection.json").write_text(json.dumps(config))
    assert list(zc.open_collection(str(root)).partitions())[-1] == "year=2024/month=03"


@pytest.mark.parametrize("mode", ["r", "rw"])
def test_newer_format_version_raises_and_changes_nothing(tmp_path: Path, mode: str) -> None:
    root = tmp_path / "v2"
    build_by_hand(root, version=2)
    before = files_under(root)
    with pytest.raises(zc.FormatVersionError):
        zc.open_collection(str(root), mode=mode)
    assert files_under(root) == before


@pytest.mark.parametrize("version", ["1", 0, True, None])
def test_malformed_format_version_is_a_corrupt_config(tmp_path: Path, version: Any) -> None:
    root = tmp_path / "bad"
    build_by_hand(root)
    config = json.loads((root / "_zcollection.json").read_text())
    config["format_version"] = version
    (root / "_zcollection.json").write_text(json.dumps(config))
    with pytest.raises(zc.ZCollectionError) as info:
        zc.open_collection(str(root))
    assert not isinstance(info.value, zc.FormatVersionError)


def test_partition_without_key_attribute_is_not_listed(tmp_path: Path) -> None:
    root = tmp_path / "crashed"
    paths = build_by_hand(root, incomplete=True)
    assert (root / "year=2024" / "month=04" / "zarr.json").is_file()
    col = zc.open_collection(str(root), mode="rw")
    assert list(col.partitions()) == paths
    result = col.query(filters="month == 4")
    assert result is None
    everything = col.query()
    assert everything is not None
    assert numpy.datetime64("2024-04-02", "ns") not in everything["time"].to_numpy()
    assert list(col.partitions(filters="year == 2024")) == paths[1:]
    # dropping every partition leaves the incomplete one alone (it is not a partition)
    assert col.drop_partitions() == paths
    assert list(col.partitions()) == []


def test_repair_catalog_skips_incomplete_partitions(tmp_path: Path) -> None:
    root = tmp_path / "crashed-catalog"
    paths = build_by_hand(root, catalog=True, incomplete=True)
    (root / "_catalog" / "state.json").write_text('{"format_version": 1, "paths": []}')
    col = zc.open_collection(str(root), mode="rw")
    assert col.repair_catalog() == paths
    state = strict_json(root / "_catalog" / "state.json")
    assert state["paths"] == paths
    assert state["checksum"] == catalog_checksum(paths)


def test_catalog_written_by_the_reference_is_used(tmp_path: Path) -> None:
    """A valid catalog is the listing: a partition it omits is not listed."""
    root = tmp_path / "catalogued"
    paths = build_by_hand(root, catalog=True)
    kept = paths[1:]
    state = {"format_version": 1, "paths": kept, "checksum": catalog_checksum(kept)}
    (root / "_catalog" / "state.json").write_text(json.dumps(state))
    assert list(zc.open_collection(str(root)).partitions()) == kept


def test_catalog_with_a_wrong_checksum_is_not_trusted(tmp_path: Path) -> None:
    root = tmp_path / "stale"
    paths = build_by_hand(root, catalog=True)
    state = {"format_version": 1, "paths": paths[1:], "checksum": catalog_checksum(paths)}
    (root / "_catalog" / "state.json").write_text(json.dumps(state))
    assert list(zc.open_collection(str(root)).partitions()) == paths


def test_enabled_catalog_without_its_file_lists_the_store(tmp_path: Path) -> None:
    root = tmp_path / "no-state"
    paths = build_by_hand(root, catalog=True)
    (root / "_catalog" / "state.json").unlink()
    col = zc.open_collection(str(root), mode="rw")
    assert list(col.partitions()) == paths
    assert col.repair_catalog() == paths
    assert strict_json(root / "_catalog" / "state.json")["paths"] == paths


@pytest.mark.parametrize("mode", ["r", "rw"])
def test_opening_a_missing_collection_creates_nothing(tmp_path: Path, mode: str) -> None:
    missing = tmp_path / "missing" / "deeper"
    with pytest.raises(zc.CollectionNotFoundError):
        zc.open_collection(str(missing), mode=mode)
    with pytest.raises(zc.CollectionNotFoundError):
        zc.open_collection(missing.as_uri(), mode=mode)
    assert not (tmp_path / "missing").exists()

    # an empty directory, and a plain Zarr group, are not collections either
    empty = tmp_path / "empty"
    empty.mkdir()
    plain = tmp_path / "plain"
    zarr.open_group(str(plain), mode="w", zarr_format=3)
    before = files_under(plain)
    for path in (empty, plain):
        with pytest.raises(zc.CollectionNotFoundError):
            zc.open_collection(str(path), mode=mode)
    assert list(empty.iterdir()) == []
    assert files_under(plain) == before
