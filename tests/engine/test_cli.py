"""The ``zcollection`` command (ls, inspect, drop) on real collections in tmp_path.

Most cases call ``zcollection.cli.main`` in-process (stdout/stderr captured, stdin replaced);
a few run ``python -m zcollection`` as a real process, as a user would.

Exit codes: 0 success; 1 a valid command that failed (no collection, corrupt or unreadable
collection, declined confirmation); 2 a wrong command line (arguments, filters, URLs). Errors
are one line on stderr starting with ``zcollection: error:``, never a traceback.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy
import pytest
import zcollection as zc
from zcollection.cli import main

CYCLES = [10, 2, 1, 2, 10, -3]


def make_collection(root: Path, *, catalog: bool = False) -> zc.Collection:
    """A Sequence collection with partitions cycle=-3, 1, 2 and 10 (inserted out of order)."""
    schema = (
        zc.Schema()
        .with_dimension("num")
        .with_dimension("x", size=2)
        .with_variable("cycle", dtype="int32", dimensions=("num",))
        .with_variable(
            "ssh", dtype="float32", dimensions=("num", "x"), fill_value=numpy.float32("nan")
        )
        .with_variable("x", dtype="int16", dimensions=("x",), fill_value=-1)
        .build()
    )
    col = zc.create_collection(
        str(root),
        schema=schema,
        axis="num",
        partitioning=zc.partitioning.Sequence(("cycle",), dimension="num"),
        catalog_enabled=catalog,
    )
    n = len(CYCLES)
    col.insert(
        zc.Dataset(
            schema,
            [
                zc.Variable(schema.variables["cycle"], numpy.array(CYCLES, "int32")),
                zc.Variable(
                    schema.variables["ssh"], numpy.arange(2 * n, dtype="float32").reshape(n, 2)
                ),
                zc.Variable(schema.variables["x"], numpy.array([0, 1], "int16")),
            ],
        )
    )
    return col


ALL = ["cycle=-3", "cycle=1", "cycle=2", "cycle=10"]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "coll"
    make_collection(path)
    return path


@pytest.fixture
def root(tmp_path: Path, template: Path) -> Path:
    """A fresh copy of the collection made by ``make_collection`` (copied: it is faster)."""
    path = tmp_path / "coll"
    shutil.copytree(template, path)
    return path


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run(capsys: Any, *args: str, stdin: str | None = None, monkeypatch: Any = None) -> Any:
    """Run ``main(args)``; return (exit code, stdout, stderr)."""
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse rejects the command line
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str) -> None:
    assert err.endswith("\n")
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("zcollection: error: "), err
    assert "Traceback" not in err


def strict_json(text: str) -> Any:
    def refuse(token: str) -> Any:
        raise AssertionError(f"non-JSON token {token} in {text!r}")

    return json.loads(text, parse_constant=refuse)


# -- ls ----------------------------------------------------------------------------------------


def test_ls_lists_in_key_order(capsys, root):
    code, out, err = run(capsys, "ls", str(root))
    assert (code, err) == (0, "")
    assert out.splitlines() == ALL


def test_ls_accepts_file_urls(capsys, root):
    code, out, _ = run(capsys, "ls", root.as_uri())
    assert code == 0
    assert out.splitlines() == ALL


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ("cycle >= 2", ["cycle=2", "cycle=10"]),
        ("cycle == -3", ["cycle=-3"]),
        ("cycle in (1, 10)", ["cycle=1", "cycle=10"]),
        ("not cycle < 0 and cycle != 2", ["cycle=1", "cycle=10"]),
        ("cycle > 100", []),
    ],
)
def test_ls_filters(capsys, root, filters, expected):
    for flag in ("--filters", "-f"):
        code, out, err = run(capsys, "ls", str(root), flag, filters)
        assert (code, err) == (0, "")
        assert [line for line in out.splitlines() if line] == expected
        code, out, err = run(capsys, "ls", str(root), flag, filters, "--json")
        assert (code, err) == (0, "")
        assert strict_json(out) == expected


def test_ls_json(capsys, root):
    code, out, err = run(capsys, "ls", "--json", str(root))
    assert (code, err) == (0, "")
    assert strict_json(out) == ALL


def test_ls_uses_a_catalog(capsys, tmp_path):
    path = tmp_path / "catalogued"
    make_collection(path, catalog=True)
    code, out, _ = run(capsys, "ls", str(path), "--json")
    assert code == 0
    assert strict_json(out) == ALL


# -- inspect -----------------------------------------------------------------------------------


def test_inspect_text(capsys, root):
    code, out, err = run(capsys, "inspect", str(root))
    assert (code, err) == (0, "")
    assert root.as_uri() in out
    assert "axis: num" in out
    assert json.dumps(zc.partitioning.Sequence(("cycle",), dimension="num").to_json()) in out
    assert "partitions: 4 (cycle=-3 .. cycle=10)" in out
    assert "catalog: disabled" in out
    lines = out.splitlines()
    (ssh,) = [line for line in lines if "/ssh" in line]
    assert "(num, x)" in ssh
    assert "float32" in ssh
    assert "partitioned" in ssh
    assert '"NaN"' in ssh  # the fill value, as JSON
    (x,) = [line for line in lines if line.strip().startswith("/x ")]
    assert "immutable" in x
    assert "fill=-1" in x


def test_inspect_json(capsys, root):
    code, out, err = run(capsys, "inspect", str(root), "--json")
    assert (code, err) == (0, "")
    info = strict_json(out)
    opened = zc.open_collection(str(root))
    assert info["partition_count"] == 4
    assert info["axis"] == "num"
    assert info["partitioning"] == {"name": "sequence", "variables": ["cycle"], "dimension": "num"}
    assert info["schema"] == opened.schema.to_json()
    assert info["first_partition"] == "cycle=-3"
    assert info["last_partition"] == "cycle=10"
    assert info["catalog_enabled"] is False
    assert zc.DatasetSchema.from_json(info["schema"]) == opened.schema


def test_inspect_empty_collection(capsys, tmp_path):
    path = tmp_path / "empty"
    col = make_collection(path)
    col.drop_partitions()
    code, out, _ = run(capsys, "inspect", str(path), "--json")
    assert code == 0
    info = strict_json(out)
    assert info["partition_count"] == 0
    assert info["first_partition"] is None
    code, out, _ = run(capsys, "inspect", str(path))
    assert code == 0
    assert "partitions: 0" in out


# -- drop --------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", ["n\n", "\n", "", "nope\n"])
def test_drop_declined_drops_nothing(capsys, monkeypatch, root, answer):
    before = snapshot(root)
    code, out, err = run(
        capsys, "drop", str(root), "-f", "cycle == 2", stdin=answer, monkeypatch=monkeypatch
    )
    assert code == 1
    assert "[y/N]" in out
    assert "1 partition" in out
    assert len(err.splitlines()) == 1
    assert err.startswith("zcollection: ")
    assert "Traceback" not in err
    assert snapshot(root) == before


@pytest.mark.parametrize("answer", ["y\n", "yes\n", "Y\n"])
def test_drop_confirmed(capsys, monkeypatch, root, answer):
    code, out, err = run(
        capsys, "drop", str(root), "-f", "cycle >= 2", stdin=answer, monkeypatch=monkeypatch
    )
    assert (code, err) == (0, "")
    assert "dropped cycle=2" in out
    assert "dropped cycle=10" in out
    assert list(zc.open_collection(str(root)).partitions()) == ["cycle=-3", "cycle=1"]
    assert not (root / "cycle=2").exists()


def test_drop_yes_skips_the_question(capsys, monkeypatch, root):
    # stdin answers "n": the question must not be asked at all
    code, out, err = run(
        capsys, "drop", str(root), "--filters", "cycle == 1", "-y", stdin="n\n",
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert "[y/N]" not in out
    assert out.splitlines() == ["dropped cycle=1"]
    assert list(zc.open_collection(str(root)).partitions()) == ["cycle=-3", "cycle=2", "cycle=10"]


def test_drop_json_keeps_stdout_json_when_asking(capsys, monkeypatch, root):
    code, out, err = run(
        capsys, "drop", str(root), "-f", "cycle == 1", "--json", stdin="y\n",
        monkeypatch=monkeypatch,
    )  # fmt: skip
    assert code == 0
    assert strict_json(out) == ["cycle=1"]
    assert "[y/N]" in err
    code, out, err = run(
        capsys, "drop", str(root), "--all", "--json", stdin="n\n", monkeypatch=monkeypatch
    )
    assert code == 1
    assert out == ""
    assert "[y/N]" in err
    assert "Traceback" not in err
    assert list(zc.open_collection(str(root)).partitions()) == ["cycle=-3", "cycle=2", "cycle=10"]


def test_drop_json(capsys, root):
    code, out, err = run(capsys, "drop", str(root), "-f", "cycle < 2", "--yes", "--json")
    assert (code, err) == (0, "")
    assert strict_json(out) == ["cycle=-3", "cycle=1"]


def test_drop_all_needs_all(capsys, root):
    before = snapshot(root)
    code, _, err = run(capsys, "drop", str(root), "-y")
    assert code == 2
    assert_one_line_error(err)
    assert "--all" in err
    assert snapshot(root) == before
    code, _, err = run(capsys, "drop", str(root), "--all", "-f", "cycle == 1", "-y")
    assert code == 2
    assert_one_line_error(err)
    assert snapshot(root) == before

    code, out, err = run(capsys, "drop", str(root), "--all", "-y", "--json")
    assert (code, err) == (0, "")
    assert strict_json(out) == ALL
    assert list(zc.open_collection(str(root)).partitions()) == []
    assert zc.open_collection(str(root)).query() is None


def test_drop_all_asks_first(capsys, monkeypatch, root):
    before = snapshot(root)
    code, out, _ = run(capsys, "drop", str(root), "--all", stdin="n\n", monkeypatch=monkeypatch)
    assert code == 1
    assert "4 partition" in out
    assert snapshot(root) == before


def test_drop_nothing_matches(capsys, monkeypatch, root):
    before = snapshot(root)
    code, out, err = run(
        capsys, "drop", str(root), "-f", "cycle == 99", stdin="", monkeypatch=monkeypatch
    )
    assert (code, err) == (0, "")
    assert "[y/N]" not in out
    assert snapshot(root) == before
    code, out, _ = run(capsys, "drop", str(root), "-f", "cycle == 99", "--json")
    assert code == 0
    assert strict_json(out) == []


def test_drop_updates_the_catalog(capsys, tmp_path):
    path = tmp_path / "catalogued"
    make_collection(path, catalog=True)
    code, _, _ = run(capsys, "drop", str(path), "-f", "cycle == 10", "-y")
    assert code == 0
    state = json.loads((path / "_catalog" / "state.json").read_text())
    assert state["paths"] == ["cycle=-3", "cycle=1", "cycle=2"]


# -- errors and exit codes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters", ["cycle ==", "unknown == 1", "__import__('os')", "cycle + 1 == 2", "cycle > 'a'"]
)
@pytest.mark.parametrize("command", ["ls", "drop"])
def test_bad_filters_exit_2(capsys, root, command, filters):
    before = snapshot(root)
    args = [command, str(root), "-f", filters] + (["-y"] if command == "drop" else [])
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert_one_line_error(err)
    assert snapshot(root) == before


@pytest.mark.parametrize("url", ["foo://bar", "file://remote-host/x", "", "s3://"])
@pytest.mark.parametrize("command", [["ls"], ["inspect"], ["drop", "--all", "-y"]])
def test_bad_urls_exit_2(capsys, command, url):
    code, out, err = run(capsys, command[0], url, *command[1:])
    assert code == 2
    assert out == ""
    assert_one_line_error(err)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["ls"],
        ["inspect"],
        ["ls", "a", "b"],
        ["ls", "x", "--bogus"],
        ["drop", "x"],
        ["inspect", "x", "--filters"],
    ],
)
def test_bad_arguments_exit_2(capsys, args):
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    assert_one_line_error(err)


@pytest.mark.parametrize("command", [["ls"], ["inspect"], ["drop", "--all", "-y"]])
def test_missing_collection_exits_1_and_creates_nothing(capsys, tmp_path, command):
    missing = tmp_path / "missing"
    code, out, err = run(capsys, command[0], str(missing), *command[1:])
    assert code == 1
    assert out == ""
    assert_one_line_error(err)
    assert not missing.exists()


@pytest.mark.parametrize("command", [["ls"], ["inspect"], ["drop", "--all", "-y"]])
def test_unreadable_collection_exits_1(capsys, root, command):
    config = json.loads((root / "_zcollection.json").read_text())
    for broken in (
        {**config, "format_version": 2},  # newer than supported
        {**config, "catalog": "yes"},  # corrupt
        {**config, "axis": ["num"]},  # corrupt
    ):
        (root / "_zcollection.json").write_text(json.dumps(broken))
        before = snapshot(root)
        code, out, err = run(capsys, command[0], str(root), *command[1:])
        assert code == 1, broken
        assert out == ""
        assert_one_line_error(err)
        assert snapshot(root) == before
    (root / "_zcollection.json").write_bytes(b"\xff not json")
    code, _, err = run(capsys, command[0], str(root), *command[1:])
    assert code == 1
    assert_one_line_error(err)


@pytest.mark.parametrize("command", [["ls"], ["inspect"], ["drop", "--all", "-y"]])
def test_failed_read_exits_1(capsys, root, command):
    """A partition's group metadata is corrupt: the command fails, touching nothing."""
    (root / "cycle=2" / "zarr.json").write_text("{corrupt")
    before = snapshot(root)
    code, out, err = run(capsys, command[0], str(root), *command[1:])
    assert code == 1
    assert out == ""
    assert_one_line_error(err)
    assert snapshot(root) == before


# -- the real command --------------------------------------------------------------------------


def command(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zcollection", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_real_command_ls_and_drop(root):
    listed = command("ls", str(root), "--json")
    assert (listed.returncode, listed.stderr) == (0, "")
    assert strict_json(listed.stdout) == ALL

    dropped = command("drop", str(root), "-f", "cycle == 10", "--json", stdin="y\n")
    assert dropped.returncode == 0, dropped.stderr
    assert strict_json(dropped.stdout) == ["cycle=10"]  # the question went to stderr
    assert "[y/N]" in dropped.stderr
    assert list(zc.open_collection(str(root)).partitions()) == ALL[:-1]


@pytest.mark.parametrize(
    ("args", "code"), [(["ls", "{root}", "-f", "cycle =="], 2), (["inspect", "{root}/missing"], 1)]
)
def test_real_command_errors(root, args, code):
    done = command(*(a.format(root=root) for a in args))
    assert done.returncode == code
    assert done.stdout == ""
    assert_one_line_error(done.stderr)
