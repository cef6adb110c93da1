"""Build a small demo collection: ``python -m zcollection.demo PATH``.

Three months of a synthetic along-track altimetry product partitioned by month: a
``time`` axis, a ``(time, x_ac)`` sea surface height and an immutable ``x_ac`` coordinate.
"""

from __future__ import annotations

import argparse
import sys

import numpy

from . import Dataset, Schema, Variable, codecs, create_collection, partitioning
from .collection import Collection


def demo_dataset(rows_per_day: int = 24, days: int = 90, x_ac: int = 32) -> Dataset:
    """Return the synthetic dataset of the demo (deterministic)."""
    schema = (
        Schema()
        .with_dimension("time", chunks=4096)
        .with_dimension("x_ac", size=x_ac, chunks=x_ac)
        .with_attribute("title", "zcollection-flight demo altimetry")
        .with_variable(
            "time", dtype="datetime64[ns]", dimensions=("time",), attrs={"long_name": "time"}
        )
        .with_variable(
            "ssh",
            dtype="float32",
            dimensions=("time", "x_ac"),
            fill_value=numpy.float32("nan"),
            codecs=codecs.profile("local-fast"),
            attrs={"units": "m", "long_name": "sea surface height"},
        )
        .with_variable("x_ac", dtype="float32", dimensions=("x_ac",), attrs={"units": "km"})
        .build()
    )
    start = numpy.datetime64("2024-01-01T00:00:00", "ns")
    step = numpy.timedelta64(86_400 * 10**9 // rows_per_day, "ns")
    n = rows_per_day * days
    time = start + numpy.arange(n) * step
    rng = numpy.random.default_rng(42)
    x = numpy.linspace(-60.0, 60.0, x_ac, dtype="float32")
    ssh = (
        numpy.sin(numpy.arange(n)[:, None] / 50.0) * 0.5 + rng.normal(0, 0.05, (n, x_ac))
    ).astype("float32")
    return Dataset(
        schema,
        [
            Variable(schema.variables["time"], time),
            Variable(schema.variables["ssh"], ssh),
            Variable(schema.variables["x_ac"], x),
        ],
    )


def build(path: str) -> Collection:
    """(Re)create the demo collection at ``path`` and fill it."""
    ds = demo_dataset()
    collection = create_collection(
        path,
        schema=ds.schema,
        axis="time",
        partitioning=partitioning.Date("time", resolution="M"),
        catalog_enabled=True,
        overwrite=True,
    )
    collection.insert(ds)
    return collection


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m zcollection.demo")
    parser.add_argument("path", help="where to write the demo collection")
    args = parser.parse_args(argv)
    collection = build(args.path)
    print(
        f"demo collection written to {collection.store.root_uri}: {list(collection.partitions())}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
