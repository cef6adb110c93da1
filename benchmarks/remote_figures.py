"""Figures through the Flight server: remote against local, the wire ceiling, memory and
concurrent clients. Every server runs in its own subprocess on 127.0.0.1."""

from __future__ import annotations

import functools
import json
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.flight as flight
import zcollection as zc
import zcollection_client
from zcollection_proto import Query, encode_command

from .engine_figures import read_repeats
from .procs import PeakRSS, Server, cpu_seconds, rss_bytes, zcollection_server
from .report import Figure
from .workload import (
    MONTHS,
    ROW_BYTES,
    month_dataset,
    monthly,
    paired_ratio,
    reference_dataset,
    schema,
    side_by_side,
    timed,
)

MIB = 1024**2


@dataclass
class Settings:
    """What the remote figures run on."""

    work: Path
    rows_per_month: int
    repeats: int
    large_bytes: int
    clients: tuple[int, ...]
    log: Any


class CpuMeter:
    """Wraps candidates to record the CPU seconds this process and the server used per run."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.samples: dict[str, list[tuple[float, float]]] = {}

    def wrap(self, name: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Return ``fn`` measuring its CPU (here, on the server) into ``samples[name]``."""

        def run() -> Any:
            here, there = cpu_seconds(), cpu_seconds(self.server_pid)
            result = fn()
            sample = (cpu_seconds() - here, cpu_seconds(self.server_pid) - there)
            self.samples.setdefault(name, []).append(sample)
            return result

        return run

    def medians(self, name: str) -> tuple[float, float]:
        """Median CPU seconds (this process, server) of ``name``'s runs."""
        runs = self.samples[name]
        return (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))

    def text(self, name: str) -> str:
        """``CPU x s here + y s server``."""
        here, there = self.medians(name)
        return f"CPU {here:.2f} s + server {there:.2f} s"


def _gb_s(size: int, seconds: float) -> float:
    return size / seconds / 1e9 if seconds > 0 else float("nan")


def _dataset_bytes(dataset: zc.Dataset) -> int:
    return sum(v.to_numpy().nbytes for v in dataset.all_variables().values())


# -- remote against local ----------------------------------------------------------------------
def remote_vs_local(settings: Settings, reference: Path) -> tuple[list[Figure], dict[str, Any]]:
    """Client query and insert over loopback against the engine in this process."""
    served = settings.work / "served"
    shutil.rmtree(served, ignore_errors=True)
    served.mkdir(parents=True)
    shutil.move(str(reference), served / "reference")
    local = zc.open_collection(str(served / "reference"))
    server = zcollection_server(served, settings.work / "server.log")
    rates: dict[str, Any] = {}
    try:
        connection = zcollection_client.connect(server.uri)
        remote = connection.open_collection("reference")
        settings.log("remote query against local query")
        sizes: dict[str, int] = {}

        def check(name: str, round_: int, value: Any) -> None:
            sizes[name] = _dataset_bytes(value)

        cpu = CpuMeter(server.pid)
        reads = side_by_side(
            read_repeats(settings.repeats),
            {
                "local": cpu.wrap("local query", lambda: local.query()),
                "remote": cpu.wrap("remote query", lambda: remote.query()),
            },
            after=check,
        )
        assert sizes["local"] == sizes["remote"], sizes
        size = sizes["local"]
        rates["query_bytes"] = size
        rates["local_query_gb_s"] = _gb_s(size, reads["local"].median)
        rates["remote_query_gb_s"] = _gb_s(size, reads["remote"].median)

        settings.log("remote insert against local insert")
        sch = local.schema
        data = reference_dataset(
            schema(zc.codecs.DEFAULT_PROFILE), "random", settings.rows_per_month
        )
        targets: dict[str, Any] = {}

        def before(name: str, round_: int) -> None:
            path = served / f"insert-{name}-{round_}"
            shutil.rmtree(path, ignore_errors=True)
            zc.create_collection(str(path), schema=sch, axis="time", partitioning=monthly())
            if name == "local":
                targets[name] = zc.open_collection(str(path), mode="rw")
            else:
                targets[name] = connection.open_collection(path.name, mode="rw")

        def after(name: str, round_: int, value: Any) -> None:
            assert len(value) == MONTHS, value
            shutil.rmtree(served / f"insert-{name}-{round_}")

        writes = side_by_side(
            settings.repeats,
            {
                "local": cpu.wrap("local insert", lambda: targets["local"].insert(data)),
                "remote": cpu.wrap("remote insert", lambda: targets["remote"].insert(data)),
            },
            before=before,
            after=after,
        )
        rates["ceiling"] = _ceiling(settings, served / "reference", size)
        connection.close()
        clients = _concurrent(settings, server, size)
    finally:
        server.stop()
    workload = f"reference collection ({zc.codecs.DEFAULT_PROFILE}, random), {size / MIB:.0f} MiB"
    ceiling = rates["ceiling"]
    figures = [
        Figure(
            key="remote_query_vs_local",
            label="remote query (client, loopback) / local engine query",
            value=paired_ratio(reads["remote"], reads["local"]),
            unit="x",
            target=1.25,
            workload=workload,
            detail=(
                f"{reads['remote'].median:.3f} s / {reads['local'].median:.3f} s; "
                f"remote {cpu.text('remote query')}, local {cpu.text('local query')}"
            ),
            data={
                "remote": reads["remote"].to_json(),
                "local": reads["local"].to_json(),
                "remote_cpu_s": cpu.medians("remote query"),
                "local_cpu_s": cpu.medians("local query"),
                "remote_gb_s": rates["remote_query_gb_s"],
                "local_gb_s": rates["local_query_gb_s"],
            },
        ),
        Figure(
            key="remote_insert_vs_local",
            label="remote insert (client, loopback) / local engine insert",
            value=paired_ratio(writes["remote"], writes["local"]),
            unit="x",
            target=1.3,
            workload=workload,
            detail=(
                f"{writes['remote'].median:.3f} s / {writes['local'].median:.3f} s; "
                f"remote {cpu.text('remote insert')}, local {cpu.text('local insert')}"
            ),
            data={
                "remote": writes["remote"].to_json(),
                "local": writes["local"].to_json(),
                "remote_cpu_s": cpu.medians("remote insert"),
                "local_cpu_s": cpu.medians("local insert"),
            },
        ),
        Figure(
            key="flight_ceiling",
            label="pyarrow Flight do_get of the same bytes in memory",
            value=ceiling["one_stream_gb_s"],
            unit="GB/s",
            workload=workload,
            detail=(
                f"1 stream; {ceiling['parallel_gb_s']:.2f} GB/s with one stream per partition, "
                f"4 at a time (the client's parallelism); the client's query reaches "
                f"{rates['remote_query_gb_s']:.2f} GB/s"
            ),
            data=ceiling,
        ),
        clients,
    ]
    return figures, rates


def _ceiling(settings: Settings, path: Path, size: int) -> dict[str, Any]:
    """do_get of the same record batches from a bare pyarrow server holding them in memory."""
    settings.log("wire ceiling: bare pyarrow Flight server")
    server = Server(["-m", "benchmarks.ceiling_server", str(path)], settings.work / "ceiling.log")
    try:
        client = flight.connect(server.uri)
        partitions = len(list(zc.open_collection(str(path)).partitions()))

        def one(ticket: str) -> int:
            total = 0
            for chunk in client.do_get(flight.Ticket(ticket.encode())):
                total += chunk.data.nbytes
            return total

        def parallel() -> int:
            with ThreadPoolExecutor(4) as pool:
                return sum(pool.map(one, [str(i) for i in range(partitions)]))

        sizes: dict[str, int] = {}

        def check(name: str, round_: int, value: Any) -> None:
            sizes[name] = value

        times = side_by_side(
            max(3, settings.repeats),
            {"one_stream": lambda: one("all"), "parallel": parallel},
            after=check,
        )
        client.close()
    finally:
        server.stop()
    return {
        "bytes_on_wire": sizes["one_stream"],
        "dataset_bytes": size,
        "one_stream_gb_s": _gb_s(sizes["one_stream"], times["one_stream"].median),
        "parallel_gb_s": _gb_s(sizes["parallel"], times["parallel"].median),
        "one_stream": times["one_stream"].to_json(),
        "parallel": times["parallel"].to_json(),
    }


# -- concurrent clients ------------------------------------------------------------------------
def _concurrent(settings: Settings, server: Server, size: int) -> Figure:
    """Aggregate read throughput with N client processes querying the collection at once."""
    results: dict[int, dict[str, Any]] = {}
    rounds = max(1, settings.repeats)
    for count in settings.clients:
        settings.log(f"{count} concurrent client(s)")
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "benchmarks.client_worker", server.uri, "reference"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(count)
        ]
        try:
            for worker in workers:
                assert worker.stdout is not None
                line = worker.stdout.readline().strip()
                if line != "ready":
                    raise RuntimeError(f"client worker failed to start: {line!r}")
            round_rates = []
            cpu_per_gb = []
            for _ in range(rounds):
                server_cpu = cpu_seconds(server.pid)
                for worker in workers:
                    assert worker.stdin is not None
                    worker.stdin.write("go\n")
                    worker.stdin.flush()
                answers = []
                for worker in workers:
                    assert worker.stdout is not None
                    answers.append(json.loads(worker.stdout.readline()))
                start = min(a["start"] for a in answers)
                end = max(a["end"] for a in answers)
                total = sum(a["bytes"] for a in answers)
                round_rates.append(_gb_s(total, end - start))
                server_cpu = cpu_seconds(server.pid) - server_cpu
                clients_cpu = sum(a["cpu"] for a in answers)
                cpu_per_gb.append((server_cpu / total * 1e9, clients_cpu / total * 1e9))
            results[count] = {
                "gb_s": statistics.median(round_rates),
                "rounds_gb_s": round_rates,
                "server_cpu_s_per_gb": statistics.median(c[0] for c in cpu_per_gb),
                "clients_cpu_s_per_gb": statistics.median(c[1] for c in cpu_per_gb),
                "bytes_per_client": size,
            }
        finally:
            for worker in workers:
                if worker.stdin is not None:
                    worker.stdin.close()
            for worker in workers:
                try:
                    worker.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
    rates = {n: r["gb_s"] for n, r in results.items()}
    ordered = sorted(rates)
    # "collapse": fewer bytes per second in total than 75% of the best with fewer clients
    collapsed = [
        n
        for i, n in enumerate(ordered[1:], 1)
        if rates[n] < 0.75 * max(rates[m] for m in ordered[:i])
    ]
    return Figure(
        key="concurrent_clients",
        label="aggregate read throughput, " + "/".join(str(n) for n in ordered) + " clients",
        value=rates[ordered[-1]],
        unit="GB/s",
        target_text="no collapse (each >= 0.75 x best with fewer)",
        met=not collapsed,
        workload=f"each client process queries the reference collection ({size / MIB:.0f} MiB)",
        detail=", ".join(f"{n}: {rates[n]:.2f}" for n in ordered)
        + " GB/s; CPU s per GB (server + clients): "
        + ", ".join(
            f"{n}: {r['server_cpu_s_per_gb']:.2f} + {r['clients_cpu_s_per_gb']:.2f}"
            for n, r in sorted(results.items())
        ),
        data={"clients": {str(n): r for n, r in results.items()}, "collapsed_at": collapsed},
    )


# -- server memory -----------------------------------------------------------------------------
def server_memory(settings: Settings) -> list[Figure]:
    """Peak RSS growth of a server subprocess streaming a large query and taking a large put."""
    rows = max(1, settings.large_bytes // (MONTHS * ROW_BYTES))
    largest = rows * ROW_BYTES
    target = (2 * largest + 64 * MIB) / MIB
    root = settings.work / "large"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    sch = schema(zc.codecs.DEFAULT_PROFILE)
    settings.log(
        f"large collection: {MONTHS} x {rows:,} rows ({rows * MONTHS * ROW_BYTES / MIB:.0f} MiB)"
    )
    collection = zc.create_collection(
        str(root / "large-query"), schema=sch, axis="time", partitioning=monthly()
    )
    build_s = 0.0
    for month in range(1, MONTHS + 1):  # one month at a time: this process stays small
        build_s += timed(functools.partial(_insert_month, collection, sch, month, rows))[0]
    for name in ("large-put", "warm-up"):
        zc.create_collection(str(root / name), schema=sch, axis="time", partitioning=monthly())
    server = zcollection_server(root, settings.work / "server-large.log")
    try:
        client = flight.connect(server.uri)
        connection = zcollection_client.connect(server.uri)
        # warm-up: import every code path of a read and a put with a few rows
        _put(connection, "warm-up", sch, rows=min(rows, 1000), months=1)
        _stream(client, Query(collection="warm-up"))
        idle = rss_bytes(server.pid)
        settings.log("server memory: streaming the large query")
        with PeakRSS(server.pid) as query_peak:
            seconds_q, streamed = timed(lambda: _stream(client, Query(collection="large-query")))
        settings.log("server memory: large do_put")
        with PeakRSS(server.pid) as put_peak:
            seconds_p, written = timed(lambda: _put(connection, "large-put", sch, rows, MONTHS))
        assert written == MONTHS, written
        client.close()
        connection.close()
    finally:
        server.stop()
    shutil.rmtree(root, ignore_errors=True)
    total = rows * MONTHS * ROW_BYTES
    workload = f"12 partitions x {largest / MIB:.0f} MiB = {total / MIB:.0f} MiB (smooth data)"
    figures = []
    for key, label, peak, seconds, size in (
        (
            "memory_query",
            "server peak memory growth, streaming a large query",
            query_peak,
            seconds_q,
            streamed,
        ),
        ("memory_put", "server peak memory growth, large do_put", put_peak, seconds_p, total),
    ):
        figures.append(
            Figure(
                key=key,
                label=label,
                value=peak.growth / MIB,
                unit="MiB",
                target=target,
                target_text=f"<= {target:.0f} MiB (2 x {largest / MIB:.0f} + 64)",
                workload=workload,
                detail=(
                    f"RSS {peak.baseline / MIB:.0f} -> {peak.peak / MIB:.0f} MiB; "
                    f"{size / MIB:.0f} MiB in {seconds:.1f} s"
                ),
                data={
                    "baseline_rss_bytes": peak.baseline,
                    "peak_rss_bytes": peak.peak,
                    "idle_rss_bytes": idle,
                    "growth_bytes": peak.growth,
                    "largest_partition_bytes": largest,
                    "target_bytes": 2 * largest + 64 * MIB,
                    "vmhwm_reset": peak.hwm_reset,
                    "rss_samples": peak.samples,
                    "seconds": seconds,
                    "bytes": size,
                    "build_seconds": build_s,
                },
            )
        )
    return figures


def _insert_month(collection: zc.Collection, sch: zc.DatasetSchema, month: int, rows: int) -> None:
    collection.insert(month_dataset(sch, "smooth", month, rows))


def _stream(client: flight.FlightClient, query: Query) -> int:
    """do_get of a query command (every partition in one stream); drop the batches."""
    total = 0
    for chunk in client.do_get(flight.Ticket(encode_command(query))):
        total += chunk.data.nbytes
    return total


def _put(connection: Any, name: str, sch: zc.DatasetSchema, rows: int, months: int) -> int:
    """``insert_stream`` through the client of ``months`` months, generated one at a time (the
    sender's memory stays small): one do_put; return the partitions acknowledged."""
    remote = connection.open_collection(name, mode="rw")
    stream = (month_dataset(sch, "smooth", month, rows) for month in range(1, months + 1))
    return len(remote.insert_stream(stream))


__all__ = ["Settings", "remote_vs_local", "server_memory"]
