"""``python -m benchmarks``: every figure of issue 7, side by side, in one run.

Creates its data in a temporary directory, prints a table (figure, value, target, status,
workload, what was measured) and writes the results as JSON (``benchmarks/results.json``
by default).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zcollection as zc

from . import engine_figures, remote_figures
from .report import Figure, machine, table, write_json
from .workload import FULL_LARGE_BYTES, FULL_ROWS_PER_MONTH

DEFAULT_SCALE = 0.25
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"
FIGURES = ("reference", "small", "catalog", "remote", "memory")


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Engine and wire benchmarks of zcollection-flight (issue 7).",
    )
    p.add_argument(
        "--scale",
        type=float,
        default=DEFAULT_SCALE,
        help=(
            "data volume: rows per month = 50,000 x scale, large query/insert = 4 GiB x scale "
            f"(default {DEFAULT_SCALE}; 1 = the issue's full size)"
        ),
    )
    p.add_argument("--full", action="store_true", help="the issue's full size (--scale 1)")
    p.add_argument(
        "--partitions", type=int, default=1000, help="many-small-partitions count (1000)"
    )
    p.add_argument("--rows", type=int, default=10, help="rows of each small partition (10)")
    p.add_argument(
        "--catalog-partitions",
        type=int,
        default=100_000,
        help="partitions of the catalog listing (100,000)",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed runs of each measurement, median reported (5; full reads: 2 x N + 1)",
    )
    p.add_argument(
        "--profiles",
        default=",".join(zc.codecs.profile_names()),
        help="codec profiles of the reference workload (default: all)",
    )
    p.add_argument("--clients", default="1,2,4,8", help="concurrent client counts (1,2,4,8)")
    p.add_argument(
        "--only",
        default=",".join(FIGURES),
        help=f"run only these groups of figures ({','.join(FIGURES)}); remote needs reference",
    )
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    p.add_argument("--workdir", type=Path, default=None, help="where data goes (default: temp)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; print the table; write the JSON."""
    args = parser().parse_args(argv)
    scale = 1.0 if args.full else args.scale
    if not scale > 0:
        raise SystemExit("--scale must be positive")
    only = {g.strip() for g in args.only.split(",") if g.strip()}
    unknown = only - set(FIGURES)
    if unknown:
        raise SystemExit(f"unknown --only groups {sorted(unknown)}; known: {', '.join(FIGURES)}")
    if "remote" in only:
        only.add("reference")
    # SIGTERM ends the run like Ctrl-C: servers stopped, temporary data removed
    signal.signal(signal.SIGTERM, _terminate)
    host = machine()
    started = time.monotonic()

    def log(message: str) -> None:
        if not args.quiet:
            elapsed = time.monotonic() - started
            print(f"[{elapsed:6.1f} s] {message}", file=sys.stderr, flush=True)

    rows_per_month = max(16, round(FULL_ROWS_PER_MONTH * scale))
    large_bytes = max(1024**2, round(FULL_LARGE_BYTES * scale))
    settings_doc: dict[str, Any] = {
        "scale": scale,
        "rows_per_month": rows_per_month,
        "large_bytes": large_bytes,
        "small_partitions": args.partitions,
        "small_rows": args.rows,
        "catalog_partitions": args.catalog_partitions,
        "repeats": args.repeats,
        "profiles": args.profiles.split(","),
        "clients": [int(c) for c in args.clients.split(",")],
        "figures": sorted(only),
    }
    figures: list[Figure] = []
    reference_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="zc-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        log(f"data in {work}; scale {scale} ({rows_per_month:,} rows per month)")
        engine = engine_figures.Settings(
            work=work,
            rows_per_month=rows_per_month,
            repeats=args.repeats,
            profiles=tuple(args.profiles.split(",")),
            small_partitions=args.partitions,
            small_rows=args.rows,
            catalog_partitions=args.catalog_partitions,
            log=log,
        )
        reference_path = None
        if "reference" in only:
            found, reference_rows, reference_path = engine_figures.reference(engine)
            figures.extend(found)
        if "small" in only:
            figures.extend(engine_figures.small_partitions(engine))
        if "catalog" in only:
            figures.extend(engine_figures.catalog_listing(engine))
        remote = remote_figures.Settings(
            work=work,
            rows_per_month=rows_per_month,
            repeats=args.repeats,
            large_bytes=large_bytes,
            clients=tuple(settings_doc["clients"]),
            log=log,
        )
        if "remote" in only and reference_path is not None:
            found, _ = remote_figures.remote_vs_local(remote, reference_path)
            figures.extend(found)
        if "memory" in only:
            figures.extend(remote_figures.server_memory(remote))
    elapsed = time.monotonic() - started
    order = {key: i for i, key in enumerate(ORDER)}
    figures.sort(key=lambda f: order.get(f.key, len(order)))
    print()
    print(
        f"zcollection-flight benchmarks: scale {scale} "
        f"({rows_per_month:,} rows/month; large {large_bytes / 1024**2:.0f} MiB), "
        f"{args.repeats} repeats (medians), {elapsed:.0f} s"
    )
    print()
    print(table(figures))
    if reference_rows:
        print()
        print(
            "Reference workload, each codec profile and data kind (median times; ratio: "
            "median of the per-round ratios, each round's two runs back to back; best: "
            "fastest engine run / fastest raw run):"
        )
        print()
        print(engine_figures.reference_table(reference_rows))
    missed = [f.label for f in figures if f.met is False]
    print()
    print(f"{len(figures)} figures; targets missed: {len(missed)}")
    document = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:]),
        "elapsed_s": elapsed,
        "settings": settings_doc,
        "machine": {**host, "load_average_at_end": _load()},
        "figures": [f.to_json() for f in figures],
        "reference_runs": reference_rows,
    }
    write_json(args.output, _clean(document))
    print(f"results written to {args.output}")
    return 0


#: Order of the figures in the table (the issue's order).
ORDER = (
    "query_vs_raw",
    "insert_vs_raw",
    "partition_read_overhead_memory",
    "partition_read_overhead_local",
    "partition_insert_overhead_memory",
    "partition_insert_overhead_local",
    "catalog_listing",
    "walk_listing",
    "remote_query_vs_local",
    "remote_insert_vs_local",
    "flight_ceiling",
    "memory_query",
    "memory_put",
    "concurrent_clients",
)


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _load() -> list[float] | None:
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def _clean(value: Any) -> Any:
    """Replace NaN and infinities (not JSON) by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
