"""The benchmark workloads: schema, data and timing helpers.

Reference workload (issue 7): ``time`` datetime64[ns] partitioned by month, ``ssh`` float32
``(time, x_ac=240)``, 50,000 rows per month, 12 months, for each codec profile, random and
smooth data. ``--scale`` multiplies the rows per month and the size of the large workload.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy
import zcollection as zc

X_AC = 240
MONTHS = 12
#: Rows per month of the reference workload at --scale 1.
FULL_ROWS_PER_MONTH = 50_000
#: Bytes of the large query and insert at --scale 1 (4 GiB).
FULL_LARGE_BYTES = 4 * 1024**3
#: Bytes of one row: ``time`` (8) and ``ssh`` (240 float32).
ROW_BYTES = 8 + 4 * X_AC
KINDS = ("random", "smooth")
#: Where the reference workload's months start.
YEAR = 2024


def schema(profile: str = zc.codecs.DEFAULT_PROFILE) -> zc.DatasetSchema:
    """The reference schema with every variable encoded by codec ``profile``."""
    codecs = zc.codecs.profile(profile)
    return (
        zc.Schema()
        .with_dimension("time", chunks=4096)
        .with_dimension("x_ac", size=X_AC, chunks=X_AC)
        .with_variable("time", dtype="datetime64[ns]", dimensions=("time",), codecs=codecs)
        .with_variable(
            "ssh",
            dtype="float32",
            dimensions=("time", "x_ac"),
            fill_value=numpy.float32("nan"),
            codecs=codecs,
        )
        .build()
    )


def monthly() -> zc.partitioning.Partitioning:
    """Partitioning of the reference workload."""
    return zc.partitioning.Date("time", resolution="M")


def daily() -> zc.partitioning.Partitioning:
    """Partitioning of the many-small-partitions and catalog workloads."""
    return zc.partitioning.Date("time", resolution="D")


def month_times(year: int, month: int, rows: int) -> numpy.ndarray[Any, Any]:
    """``rows`` timestamps evenly spread over one month."""
    start = numpy.datetime64(f"{year:04d}-{month:02d}", "M")
    first = start.astype("datetime64[ns]")
    span = (start + numpy.timedelta64(1, "M")).astype("datetime64[ns]") - first
    step = span.astype("int64") // max(rows, 1)
    return first + numpy.arange(rows, dtype="int64").astype("timedelta64[ns]") * step


def ssh_values(kind: str, rows: int, seed: int) -> numpy.ndarray[Any, Any]:
    """``(rows, 240)`` float32: ``random`` (normal noise) or ``smooth`` (waves, in mm)."""
    if kind == "random":
        rng = numpy.random.default_rng(seed)
        return rng.standard_normal((rows, X_AC), dtype=numpy.float32)
    if kind == "smooth":
        t = (numpy.arange(rows, dtype=numpy.float32) + numpy.float32(seed * rows))[:, None]
        x = numpy.arange(X_AC, dtype=numpy.float32)[None, :]
        wave = numpy.sin(t / numpy.float32(5000.0)) * numpy.cos(x / numpy.float32(40.0))
        return numpy.round(wave * numpy.float32(1000.0)) / numpy.float32(1000.0)
    raise ValueError(f"unknown data kind {kind!r}")


def month_dataset(
    sch: zc.DatasetSchema, kind: str, month: int, rows: int, year: int = YEAR
) -> zc.Dataset:
    """One month of the reference workload."""
    known = sch.all_variables()
    return zc.Dataset(
        sch,
        {
            "time": zc.Variable(known["/time"], month_times(year, month, rows)),
            "ssh": zc.Variable(known["/ssh"], ssh_values(kind, rows, seed=year * 12 + month)),
        },
    )


def reference_dataset(sch: zc.DatasetSchema, kind: str, rows_per_month: int) -> zc.Dataset:
    """12 months of the reference workload in one dataset."""
    months = [month_dataset(sch, kind, m, rows_per_month) for m in range(1, MONTHS + 1)]
    known = sch.all_variables()
    return zc.Dataset(
        sch,
        {
            name: zc.Variable(
                known["/" + name], numpy.concatenate([m[name].to_numpy() for m in months])
            )
            for name in ("time", "ssh")
        },
    )


def small_dataset(sch: zc.DatasetSchema, partitions: int, rows: int) -> zc.Dataset:
    """``partitions`` days of ``rows`` rows each (the per-partition overhead workload)."""
    days = numpy.datetime64("2000-01-01", "ns") + (
        numpy.arange(partitions, dtype="int64") * 86_400 * 10**9
    ).astype("timedelta64[ns]")
    step = numpy.timedelta64(86_400 * 10**9 // max(rows, 1), "ns")
    times = (days[:, None] + numpy.arange(rows, dtype="int64")[None, :] * step).ravel()
    known = sch.all_variables()
    return zc.Dataset(
        sch,
        {
            "time": zc.Variable(known["/time"], times),
            "ssh": zc.Variable(known["/ssh"], ssh_values("random", times.size, seed=1)),
        },
    )


# -- timing ------------------------------------------------------------------------------------
@dataclass
class Timings:
    """Repeated measurements of one thing, in seconds."""

    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """The median sample (the figure reported)."""
        return statistics.median(self.samples) if self.samples else float("nan")

    def to_json(self) -> dict[str, Any]:
        """JSON form: median, min, max and every sample."""
        return {
            "median_s": self.median,
            "min_s": min(self.samples, default=float("nan")),
            "max_s": max(self.samples, default=float("nan")),
            "samples_s": list(self.samples),
        }


def paired_ratio(a: Timings, b: Timings) -> float:
    """Median over rounds of ``a / b``, each round's two runs back to back.

    Pairing cancels the slow swings of a shared machine's load that medians of each side
    taken apart would not.
    """
    return statistics.median(x / y for x, y in zip(a.samples, b.samples, strict=True))


def paired_difference(a: Timings, b: Timings) -> float:
    """Median over rounds of ``a - b`` (seconds), each round's two runs back to back."""
    return statistics.median(x - y for x, y in zip(a.samples, b.samples, strict=True))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` once after a garbage collection; return (seconds, result)."""
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def side_by_side(
    repeats: int,
    candidates: dict[str, Callable[[], Any]],
    *,
    before: Callable[[str, int], Any] | None = None,
    after: Callable[[str, int, Any], Any] | None = None,
    warmup: bool = True,
) -> dict[str, Timings]:
    """Time each candidate ``repeats`` times, interleaved, the order rotating every round.

    With ``warmup``, each candidate first runs once untimed (caches, allocator, imports).
    ``before(name, round)`` prepares a run (untimed); ``after(name, round, result)`` checks
    or cleans up after it (untimed); the warm-up run is round -1.
    """
    names = list(candidates)
    result = {name: Timings() for name in names}
    for name in names if warmup else []:
        if before is not None:
            before(name, -1)
        value = candidates[name]()
        if after is not None:
            after(name, -1, value)
        del value
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            if before is not None:
                before(name, round_)
            seconds, value = timed(candidates[name])
            result[name].samples.append(seconds)
            if after is not None:
                after(name, round_, value)
            del value
    return result


def chunks_of(total: int, size: int) -> Iterator[tuple[int, int]]:
    """Yield ``(start, stop)`` covering ``range(total)`` in steps of ``size``."""
    for start in range(0, total, max(1, size)):
        yield start, min(total, start + size)
