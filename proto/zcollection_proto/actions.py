"""The Flight actions of the protocol: versioned names, body and result messages."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from . import actions_pb2 as pb

__all__ = ["ACTIONS", "ACTION_PREFIX", "ActionSpec", "action_name"]

#: Every action name starts with this prefix.
ACTION_PREFIX = "zcollection.v1."


@dataclass(frozen=True)
class ActionSpec:
    """One action: its versioned name, body and result types, and a one-line description."""

    name: str
    request: type[Message]
    result: type[Message]
    description: str


def action_name(verb: str) -> str:
    """Return the versioned action name of ``verb`` (``"describe"`` -> ``zcollection.v1...``)."""
    return ACTION_PREFIX + verb


def _spec(verb: str, request: type[Message], result: type[Message], text: str) -> ActionSpec:
    return ActionSpec(action_name(verb), request, result, text)


#: Every action, keyed by its versioned name.
ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "list_collections",
            pb.ListCollections,
            pb.ListCollectionsResult,
            "List the names of the served collections.",
        ),
        _spec(
            "describe",
            pb.Describe,
            pb.DescribeResult,
            "Describe a collection: schema, axis, partitioning, catalog, views.",
        ),
        _spec(
            "create_collection",
            pb.CreateCollection,
            pb.CreateCollectionResult,
            "Create a collection from a schema, an axis and a partitioning.",
        ),
        _spec(
            "delete_collection",
            pb.DeleteCollection,
            pb.DeleteCollectionResult,
            "Delete a collection and all its partitions.",
        ),
        _spec(
            "list_partitions",
            pb.ListPartitions,
            pb.ListPartitionsResult,
            "List the partition paths matching a filter, in key order.",
        ),
        _spec(
            "drop_partitions",
            pb.DropPartitions,
            pb.DropPartitionsResult,
            "Delete the partitions matching a filter (all=true to drop every partition).",
        ),
        _spec(
            "repair_catalog",
            pb.RepairCatalog,
            pb.RepairCatalogResult,
            "Rebuild the partition catalog of a collection by walking its store.",
        ),
        _spec(
            "create_view",
            pb.CreateView,
            pb.CreateViewResult,
            "Create a view adding variables on top of a collection.",
        ),
        _spec(
            "describe_view",
            pb.DescribeView,
            pb.DescribeViewResult,
            "Describe a view: its schema, variables and base collection.",
        ),
        _spec("list_views", pb.ListViews, pb.ListViewsResult, "List the views of a collection."),
        _spec(
            "server_info",
            pb.ServerInfo,
            pb.ServerInfoResult,
            "Version, protocol, defaults and fleet locations of the server.",
        ),
        _spec("health", pb.Health, pb.HealthResult, "Whether the server is serving."),
    )
}
