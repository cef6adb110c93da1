"""Engine figures: full query and insert against raw zarr, per-partition overheads, listing."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy
import zarr.storage
import zcollection as zc

from . import rawzarr
from .report import Figure
from .workload import (
    FULL_ROWS_PER_MONTH,
    KINDS,
    MONTHS,
    ROW_BYTES,
    Timings,
    daily,
    monthly,
    paired_difference,
    paired_ratio,
    reference_dataset,
    schema,
    side_by_side,
    small_dataset,
    timed,
)

NAMES = ["time", "ssh"]


@dataclass
class Settings:
    """What the engine figures run on."""

    work: Path
    rows_per_month: int
    repeats: int
    profiles: tuple[str, ...]
    small_partitions: int
    small_rows: int
    catalog_partitions: int
    log: Any


def _mib(n: float) -> str:
    return f"{n / 1024**2:.0f} MiB" if n >= 1024**2 else f"{n / 1024:.0f} KiB"


def reference_workload_text(rows_per_month: int) -> str:
    """Describe the reference workload at this size."""
    size = rows_per_month * MONTHS * ROW_BYTES
    return f"12 months x {rows_per_month:,} rows ({_mib(size)})"


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


# -- reference workload: engine against raw zarr ---------------------------------------------
def reference(settings: Settings) -> tuple[list[Figure], list[dict[str, Any]], Path]:
    """Engine query and insert against raw zarr for each codec profile and data kind.

    Returns the two headline figures (worst combination), one row per combination, and the
    collection the remote figures read (default profile, random data).
    """
    rows: list[dict[str, Any]] = []
    keep: Path | None = None
    for profile in settings.profiles:
        for kind in KINDS:
            settings.log(f"reference workload: {profile}, {kind}")
            row, path = _reference_one(settings, profile, kind)
            rows.append(row)
            if keep is None and profile == zc.codecs.DEFAULT_PROFILE and kind == "random":
                keep = path
            elif path is not None:
                shutil.rmtree(path, ignore_errors=True)
    assert keep is not None
    workload = reference_workload_text(settings.rows_per_month)
    figures = []
    for key, label, target in (
        ("query_vs_raw", "engine full query / raw zarr read", 1.15),
        ("insert_vs_raw", "engine insert / raw zarr write", 1.25),
    ):
        worst = max(rows, key=lambda r: r[key])
        figures.append(
            Figure(
                key=key,
                label=label,
                value=worst[key],
                unit="x",
                target=target,
                workload=f"{workload}; worst of {len(rows)} profile/data runs",
                detail=(
                    f"worst {worst['profile']}/{worst['kind']}: "
                    + (
                        f"{worst['query_s']:.3f} s / {worst['raw_read_s']:.3f} s"
                        if key == "query_vs_raw"
                        else f"{worst['insert_s']:.3f} s / {worst['raw_write_s']:.3f} s"
                    )
                    + f"; median of the {len(rows)} runs {numpy.median([r[key] for r in rows]):.2f}"
                    + f", worst best-of {max(r[key + '_best'] for r in rows):.2f}"
                ),
                data={"runs": rows},
            )
        )
    return figures, rows, keep


def _reference_one(settings: Settings, profile: str, kind: str) -> tuple[dict[str, Any], Path]:
    sch = schema(profile)
    data = reference_dataset(sch, kind, settings.rows_per_month)
    base = settings.work / f"ref-{profile}-{kind}"
    paths: list[str] = []

    def engine_root(round_: int) -> Path:
        return base / f"engine-{round_}"

    def raw_root(round_: int) -> Path:
        return base / f"raw-{round_}"

    current: dict[str, int] = {}

    def before(name: str, round_: int) -> None:
        current[name] = round_
        _fresh(engine_root(round_) if name == "engine" else raw_root(round_))
        if name == "engine":
            zc.create_collection(
                str(engine_root(round_)), schema=sch, axis="time", partitioning=monthly()
            )

    # The raw write needs the engine's array specs: one untimed engine insert first.
    first = zc.create_collection(
        str(_fresh(base / "template")), schema=sch, axis="time", partitioning=monthly()
    )
    paths = first.insert(data)
    specs = rawzarr.array_specs(_local(base / "template"), paths, NAMES)
    sliced = _slices(data, paths, specs)

    def after(name: str, round_: int, value: Any) -> None:
        if name == "engine":
            assert value == paths, value
        shutil.rmtree(engine_root(round_) if name == "engine" else raw_root(round_))

    writes = side_by_side(
        settings.repeats,
        {
            "engine": lambda: zc.open_collection(
                str(engine_root(current["engine"])), mode="rw"
            ).insert(data),
            "raw": lambda: rawzarr.write(_local(raw_root(current["raw"]), True), specs, sliced),
        },
        before=before,
        after=after,
    )
    collection = zc.open_collection(str(base / "template"))
    expected = data["ssh"].to_numpy()

    def check(name: str, round_: int, value: Any) -> None:
        ssh = value["ssh"] if name == "raw" else value["ssh"].to_numpy()
        assert ssh.shape == expected.shape, (ssh.shape, expected.shape)

    reads = side_by_side(
        read_repeats(settings.repeats),
        {
            "engine": lambda: collection.query(),
            "raw": lambda: rawzarr.read(_local(base / "template"), paths, NAMES),
        },
        after=check,
    )
    row = {
        "profile": profile,
        "kind": kind,
        "rows_per_month": settings.rows_per_month,
        "bytes": int(data["ssh"].to_numpy().nbytes + data["time"].to_numpy().nbytes),
        "stored_bytes": _du(base / "template"),
        "query_s": reads["engine"].median,
        "raw_read_s": reads["raw"].median,
        "insert_s": writes["engine"].median,
        "raw_write_s": writes["raw"].median,
        "query_vs_raw": paired_ratio(reads["engine"], reads["raw"]),
        "insert_vs_raw": paired_ratio(writes["engine"], writes["raw"]),
        # best of each side: the intrinsic cost, without the stalls of a shared machine
        "query_vs_raw_best": min(reads["engine"].samples) / min(reads["raw"].samples),
        "insert_vs_raw_best": min(writes["engine"].samples) / min(writes["raw"].samples),
        "samples": {
            "query": reads["engine"].to_json(),
            "raw_read": reads["raw"].to_json(),
            "insert": writes["engine"].to_json(),
            "raw_write": writes["raw"].to_json(),
        },
    }
    return row, base / "template"


def read_repeats(repeats: int) -> int:
    """Runs of a cheap read (a fraction of a second): more, against the noise of the machine."""
    return 2 * repeats + 1


def _slices(
    data: zc.Dataset, paths: list[str], specs: dict[str, rawzarr.ArraySpec]
) -> dict[str, numpy.ndarray[Any, Any]]:
    """Split the dataset's arrays into the engine's partitions (views, computed untimed)."""
    result = {}
    start = 0
    for path in paths:
        rows = specs[f"{path}/time"].shape[0]
        for name in NAMES:
            result[f"{path}/{name}"] = data[name].to_numpy()[start : start + rows]
        start += rows
    return result


def _local(path: Path, writable: bool = False) -> zarr.storage.LocalStore:
    return zarr.storage.LocalStore(path, read_only=not writable)


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def reference_table(rows: list[dict[str, Any]]) -> str:
    """The per profile / data kind details of the reference workload."""
    lines = [
        "| profile | data | stored | query | raw read | ratio | best | insert | raw write "
        "| ratio | best |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['profile']} | {r['kind']} | {_mib(r['stored_bytes'])} "
            f"| {r['query_s']:.3f} s | {r['raw_read_s']:.3f} s | {r['query_vs_raw']:.2f} "
            f"| {r['query_vs_raw_best']:.2f} "
            f"| {r['insert_s']:.3f} s | {r['raw_write_s']:.3f} s | {r['insert_vs_raw']:.2f} "
            f"| {r['insert_vs_raw_best']:.2f} |"
        )
    return "\n".join(lines)


# -- many small partitions ---------------------------------------------------------------------
STORES = ("memory", "local")


def small_partitions(settings: Settings) -> list[Figure]:
    """Per-partition read and insert overhead: engine minus raw zarr, per partition.

    Measured on a memory store (the engine's own cost, no file system) and on local disk.
    """
    figures = []
    for where in STORES:
        figures.extend(_small(settings, where))
    order = {"read": 0, "insert": 1}
    figures.sort(key=lambda f: order[f.data["operation"]])
    return figures


def _small(settings: Settings, where: str) -> list[Figure]:
    n, per = settings.small_partitions, settings.small_rows
    settings.log(f"many small partitions: {n} x {per} rows, {where}")
    sch = schema()
    data = small_dataset(sch, n, per)
    base = settings.work / "small"
    counter = iter(range(1_000_000))

    def url(name: str) -> str:
        if where == "memory":
            return f"memory://zc-bench-small-{name}"
        return str(_fresh(base / name))

    template = zc.create_collection(url("template"), schema=sch, axis="time", partitioning=daily())
    paths = template.insert(data)
    assert len(paths) == n
    engine_store = template.store.zarr_store()
    specs = rawzarr.array_specs(engine_store, paths, NAMES)
    sliced = _slices(data, paths, specs)
    targets: dict[str, Any] = {}

    def before(name: str, round_: int) -> None:
        label = f"{name}-{next(counter)}"
        if name == "engine":
            targets[name] = zc.create_collection(
                url(label), schema=sch, axis="time", partitioning=daily()
            )
        elif where == "memory":
            targets[name] = zarr.storage.MemoryStore()
        else:
            targets[name] = _local(_fresh(base / label), True)

    def after(name: str, round_: int, value: Any) -> None:
        target = targets.pop(name)
        if name == "engine":
            assert value == paths
            _drop(target)
        elif where == "local":
            shutil.rmtree(target.root)

    writes = side_by_side(
        settings.repeats,
        {
            "engine": lambda: targets["engine"].insert(data),
            "raw": lambda: rawzarr.write(targets["raw"], specs, sliced),
        },
        before=before,
        after=after,
    )
    reads = side_by_side(
        settings.repeats,
        {
            "engine": lambda: template.query(),
            "raw": lambda: rawzarr.read(engine_store, paths, NAMES),
        },
    )
    _drop(template)
    store_text = "memory store" if where == "memory" else "local disk"
    workload = f"{n:,} daily partitions x {per} rows, {zc.codecs.DEFAULT_PROFILE}, {store_text}"
    figures = []
    for operation, target, timings in (("read", 0.5, reads), ("insert", 1.5, writes)):
        engine_ms = timings["engine"].median / n * 1e3
        raw_ms = timings["raw"].median / n * 1e3
        overhead_ms = paired_difference(timings["engine"], timings["raw"]) / n * 1e3
        figures.append(
            Figure(
                key=f"partition_{operation}_overhead_{where}",
                label=f"per-partition {operation} overhead ({store_text})",
                value=overhead_ms,
                unit="ms",
                target=target,
                workload=workload,
                detail=(
                    f"engine {engine_ms:.2f} ms, raw zarr {raw_ms:.2f} ms per partition "
                    "(medians; value: median of paired differences)"
                ),
                data={
                    "operation": operation,
                    "store": where,
                    "partitions": n,
                    "rows_per_partition": per,
                    "engine_ms_per_partition": engine_ms,
                    "raw_ms_per_partition": raw_ms,
                    "engine": timings["engine"].to_json(),
                    "raw": timings["raw"].to_json(),
                },
            )
        )
    shutil.rmtree(base, ignore_errors=True)
    return figures


def _drop(collection: zc.Collection) -> None:
    """Forget a collection's data (a memory store's dict, or its directory)."""
    store = collection.store
    if isinstance(store, zc.store.MemoryStore):
        if store.name is not None:
            zc.store.MemoryStore.forget(store.name)
    elif isinstance(store, zc.store.LocalStore):
        shutil.rmtree(store.path, ignore_errors=True)


# -- catalog -----------------------------------------------------------------------------------
def catalog_listing(settings: Settings) -> list[Figure]:
    """Listing many partitions from the catalog, and by walking the store."""
    n = settings.catalog_partitions
    settings.log(f"catalog: {n:,} partitions")
    sch = schema()
    root = _fresh(settings.work / "catalog")
    collection = zc.create_collection(
        str(root), schema=sch, axis="time", partitioning=daily(), catalog_enabled=True
    )
    expected = _fake_partitions(root, n)
    build_s, built = timed(collection.repair_catalog)
    assert built == expected
    with_catalog = zc.open_collection(str(root))
    assert with_catalog.catalog_enabled
    without = zc.Collection(
        with_catalog.store,
        schema=with_catalog.schema,
        axis=with_catalog.axis,
        partitioning=with_catalog.partitioning,
        catalog_enabled=False,
    )

    def check(name: str, round_: int, value: Any) -> None:
        assert value == expected

    catalog_t = side_by_side(
        max(5, settings.repeats), {"catalog": lambda: list(with_catalog.partitions())}, after=check
    )["catalog"]
    walk_t = side_by_side(
        1, {"walk": lambda: list(without.partitions())}, after=check, warmup=False
    )["walk"]
    workload = f"{n:,} daily partitions (group metadata only), local disk"
    shutil.rmtree(root, ignore_errors=True)
    return [
        Figure(
            key="catalog_listing",
            label=f"listing {n:,} partitions from the catalog",
            value=catalog_t.median * 1e3,
            unit="ms",
            target=50.0,
            workload=workload,
            detail=f"median of {len(catalog_t.samples)} runs",
            data={"partitions": n, **catalog_t.to_json()},
        ),
        Figure(
            key="walk_listing",
            label=f"listing {n:,} partitions without the catalog",
            value=walk_t.median * 1e3,
            unit="ms",
            workload=workload,
            detail=(
                f"walks the store; {walk_t.median / catalog_t.median:.0f}x the catalog; "
                f"repair_catalog took {build_s:.1f} s"
            ),
            data={"partitions": n, "repair_catalog_s": build_s, **walk_t.to_json()},
        ),
    ]


def _fake_partitions(root: Path, n: int) -> list[str]:
    """Write the group metadata of ``n`` daily partitions (what listing reads) under ``root``.

    Inserting 100,000 partitions through the engine would take minutes; listing reads only
    the partition groups, so the benchmark writes those directly, as the engine would.
    """
    days = numpy.datetime64("1900-01-01", "D") + numpy.arange(n)
    years = days.astype("datetime64[Y]").astype(int) + 1970
    months = days.astype("datetime64[M]").astype(int) % 12 + 1
    mdays = (days - days.astype("datetime64[M]")).astype(int) + 1
    paths = []
    for year, month, day in zip(years.tolist(), months.tolist(), mdays.tolist(), strict=True):
        path = f"year={year:04d}/month={month:02d}/day={day:02d}"
        key = [["year", year], ["month", month], ["day", day]]
        doc = {"zarr_format": 3, "node_type": "group", "attributes": {"_zc_partition_key": key}}
        directory = root / path
        os.makedirs(directory, exist_ok=True)
        (directory / "zarr.json").write_text(json.dumps(doc), encoding="ascii")
        paths.append(path)
    return paths


def full_rows_note(rows_per_month: int) -> str:
    """Tell how the reference size relates to the issue's."""
    return f"{rows_per_month / FULL_ROWS_PER_MONTH:.3g} x the issue's 50,000 rows per month"


__all__ = ["Settings", "Timings", "catalog_listing", "reference", "small_partitions"]
