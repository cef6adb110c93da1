"""The wire contract of zcollection-flight.

- Protobuf messages (``*.proto``, package ``zcollection.flight.v1``) and their generated
  modules ``common_pb2``, ``commands_pb2`` and ``actions_pb2``;
- :mod:`zcollection_proto.commands`: encode and decode commands and action bodies
  (protobuf binary or canonical protobuf JSON);
- :mod:`zcollection_proto.actions`: the versioned action names;
- :mod:`zcollection_proto.arrow`: the one mapping between a ``zcollection.Dataset`` and
  Arrow tables and record batches.
"""

from .actions import ACTION_PREFIX, ACTIONS, ActionSpec, action_name
from .actions_pb2 import (
    CollectionInfo,
    CreateCollection,
    CreateCollectionResult,
    CreateView,
    CreateViewResult,
    DeleteCollection,
    DeleteCollectionResult,
    Describe,
    DescribeResult,
    DescribeView,
    DescribeViewResult,
    DropPartitions,
    DropPartitionsResult,
    Health,
    HealthResult,
    ListCollections,
    ListCollectionsResult,
    ListPartitions,
    ListPartitionsResult,
    ListViews,
    ListViewsResult,
    RepairCatalog,
    RepairCatalogResult,
    ServerInfo,
    ServerInfoResult,
    ViewInfo,
)
from .arrow import (
    DEFAULT_MAX_BYTES,
    RowAssembler,
    arrow_schema,
    batches_to_dataset,
    dataset_to_batches,
    dataset_to_table,
    immutable_arrow_schema,
    immutable_from_table,
    immutable_to_table,
    split_batch,
    table_to_dataset,
)
from .commands import (
    CommandBody,
    CommandError,
    command_body,
    decode_command,
    decode_message,
    encode_command,
    encode_message,
    from_scalar,
    make_command,
    to_scalar,
    tolerance_from_proto,
    tolerance_to_proto,
)
from .commands_pb2 import (
    BatchMetadata,
    Command,
    EndpointInfo,
    ImmutableTicket,
    Insert,
    InsertResult,
    PartitionTicket,
    Query,
)
from .common_pb2 import Bound, RowSelection, Scalar, TimeValue, Tolerance

#: Name and version of the protocol.
PROTOCOL = "zcollection.flight.v1"

#: app_metadata of a message without data that abandons a do_put: nothing is written. A
#: reason may follow, after a colon (``zcollection.v1.abort: the source failed``).
ABORT_PUT = b"zcollection.v1.abort"

__all__ = [
    "ABORT_PUT",
    "ACTIONS",
    "ACTION_PREFIX",
    "DEFAULT_MAX_BYTES",
    "PROTOCOL",
    "ActionSpec",
    "BatchMetadata",
    "EndpointInfo",
    "Bound",
    "CollectionInfo",
    "Command",
    "CommandBody",
    "CommandError",
    "CreateCollection",
    "CreateCollectionResult",
    "CreateView",
    "CreateViewResult",
    "DeleteCollection",
    "DeleteCollectionResult",
    "Describe",
    "DescribeResult",
    "DescribeView",
    "DescribeViewResult",
    "DropPartitions",
    "DropPartitionsResult",
    "Health",
    "HealthResult",
    "ImmutableTicket",
    "Insert",
    "InsertResult",
    "ListCollections",
    "ListCollectionsResult",
    "ListPartitions",
    "ListPartitionsResult",
    "ListViews",
    "ListViewsResult",
    "PartitionTicket",
    "Query",
    "RepairCatalog",
    "RepairCatalogResult",
    "RowAssembler",
    "RowSelection",
    "Scalar",
    "ServerInfo",
    "ServerInfoResult",
    "TimeValue",
    "Tolerance",
    "ViewInfo",
    "action_name",
    "arrow_schema",
    "batches_to_dataset",
    "command_body",
    "dataset_to_batches",
    "dataset_to_table",
    "decode_command",
    "decode_message",
    "encode_command",
    "encode_message",
    "from_scalar",
    "immutable_arrow_schema",
    "immutable_from_table",
    "immutable_to_table",
    "make_command",
    "split_batch",
    "table_to_dataset",
    "to_scalar",
    "tolerance_from_proto",
    "tolerance_to_proto",
]
