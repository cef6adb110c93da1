"""The ``zcollection`` command: ls, inspect and drop.

Exit codes: 0 success; 1 the command was valid but failed (no collection there, I/O error,
read-only, confirmation declined); 2 the command line is wrong (arguments, filter expression,
store URL). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from .api import open_collection
from .collection import Collection
from .data.repr import human_size
from .errors import ExpressionError, InvalidURLError, ZCollectionError
from .schema.fill import fill_value_to_json

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"zcollection: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="zcollection", description="Inspect and manage zcollection collections.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ls = sub.add_parser("ls", help="list the partitions of a collection")
    ls.add_argument("url", help="collection URL or path")
    ls.add_argument("-f", "--filters", help='partition filter, e.g. "year == 2024"')
    ls.add_argument("--json", action="store_true", help="print JSON")
    inspect = sub.add_parser("inspect", help="describe a collection")
    inspect.add_argument("url", help="collection URL or path")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    drop = sub.add_parser("drop", help="drop partitions of a collection")
    drop.add_argument("url", help="collection URL or path")
    target = drop.add_mutually_exclusive_group(required=True)
    target.add_argument("-f", "--filters", help="partition filter selecting what to drop")
    target.add_argument("--all", action="store_true", help="drop every partition")
    drop.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    drop.add_argument("--json", action="store_true", help="print JSON")
    return parser


def describe(collection: Collection) -> dict[str, Any]:
    """Return the JSON description of a collection printed by ``inspect``."""
    partitions = list(collection.partitions())
    return {
        "uri": collection.store.root_uri,
        "axis": collection.axis,
        "partitioning": collection.partitioning.to_json(),
        "catalog_enabled": collection.catalog_enabled,
        "partition_count": len(partitions),
        "first_partition": partitions[0] if partitions else None,
        "last_partition": partitions[-1] if partitions else None,
        "schema": collection.schema.to_json(),
    }


def _inspect_text(info: dict[str, Any], collection: Collection) -> str:
    lines = [
        f"collection {info['uri']}",
        f"  axis: {info['axis']}",
        f"  partitioning: {json.dumps(info['partitioning'])}",
        f"  catalog: {'enabled' if info['catalog_enabled'] else 'disabled'}",
        f"  partitions: {info['partition_count']}"
        + (
            f" ({info['first_partition']} .. {info['last_partition']})"
            if info["partition_count"]
            else ""
        ),
        "  variables:",
    ]
    for path, var in collection.schema.all_variables().items():
        kind = "immutable" if var.immutable else "partitioned"
        lines.append(
            f"    {path} ({', '.join(var.dimensions)}) {var.dtype} "
            f"fill={json.dumps(fill_value_to_json(var.dtype, var.fill_value))} [{kind}]"
        )
    dims = collection.schema.all_dimensions()
    lines.append(
        "  dimensions: "
        + ", ".join(f"{d.name}={d.size if d.size is not None else '*'}" for d in dims.values())
    )
    row_bytes = 0
    for var in collection.schema.all_variables().values():
        if not var.immutable:
            extents = [dims[d].size or 1 for d in var.dimensions if d != collection.axis]
            row_bytes += var.dtype.itemsize * math.prod(extents)
    lines.append(f"  uncompressed bytes per row: {human_size(row_bytes)}")
    return "\n".join(lines)


def _confirm(question: str, *, quiet_stdout: bool = False) -> bool:
    """Ask ``question`` on stdout (on stderr when stdout must stay JSON); read the answer."""
    if sys.stdin is None:
        return False
    stream = sys.stderr if quiet_stdout else sys.stdout
    print(f"{question} [y/N] ", end="", file=stream, flush=True)
    answer = sys.stdin.readline()
    if not sys.stdin.isatty():
        print(file=stream)  # the answer was not echoed: end the prompt's line
    return answer.strip().lower() in ("y", "yes")


def _run(args: argparse.Namespace) -> int:
    if args.command == "ls":
        collection = open_collection(args.url, mode="r")
        paths = list(collection.partitions(filters=args.filters))
        print(json.dumps(paths) if args.json else "\n".join(paths))
        return EXIT_OK
    if args.command == "inspect":
        collection = open_collection(args.url, mode="r")
        info = describe(collection)
        print(json.dumps(info, indent=2) if args.json else _inspect_text(info, collection))
        return EXIT_OK
    # drop
    collection = open_collection(args.url, mode="rw")
    filters = None if args.all else args.filters
    targets = list(collection.partitions(filters=filters))
    if not targets:
        print(json.dumps([]) if args.json else "nothing to drop")
        return EXIT_OK
    if not args.yes and not _confirm(
        f"drop {len(targets)} partition(s) of {collection.store.root_uri}?", quiet_stdout=args.json
    ):
        print("zcollection: aborted (pass -y to drop without asking)", file=sys.stderr)
        return EXIT_FAILED
    dropped = collection.drop_partitions(filters=filters)
    print(json.dumps(dropped) if args.json else "\n".join(f"dropped {p}" for p in dropped))
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``zcollection`` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (ExpressionError, InvalidURLError) as exc:
        print(f"zcollection: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ZCollectionError as exc:
        print(f"zcollection: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("zcollection: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"zcollection: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
