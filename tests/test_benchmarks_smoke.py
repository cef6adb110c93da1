"""The benchmark command runs end to end at a tiny scale, prints its table and writes JSON.

Benchmarks are not tests: this only checks that ``python -m benchmarks`` works (its figures
are meaningless at this size). See BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TINY = [
    "--scale",
    "0.001",
    "--partitions",
    "10",
    "--catalog-partitions",
    "200",
    "--repeats",
    "1",
    "--profiles",
    "cloud-balanced",
    "--clients",
    "1,2",
    "--quiet",
]


def test_benchmarks_run_at_a_tiny_scale(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", *TINY, "--output", str(output)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    header = [line for line in done.stdout.splitlines() if line.startswith("| figure ")]
    assert header and all(word in header[0] for word in ("value", "target", "status"))
    document = json.loads(output.read_text(encoding="utf-8"))
    keys = {figure["key"] for figure in document["figures"]}
    assert {
        "query_vs_raw",
        "insert_vs_raw",
        "partition_read_overhead_memory",
        "partition_insert_overhead_local",
        "catalog_listing",
        "walk_listing",
        "remote_query_vs_local",
        "remote_insert_vs_local",
        "flight_ceiling",
        "memory_query",
        "memory_put",
        "concurrent_clients",
    } <= keys
    for figure in document["figures"]:
        assert figure["label"] in done.stdout
        assert figure["value"] is None or isinstance(figure["value"], int | float)
    assert document["settings"]["scale"] == 0.001
    assert document["machine"]["cpus"] >= 1
