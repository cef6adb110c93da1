from zcollection_proto import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Query(_message.Message):
    __slots__ = ("collection", "filters", "variables", "selection", "view", "max_batch_bytes")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_BYTES_FIELD_NUMBER: _ClassVar[int]
    collection: str
    filters: str
    variables: _containers.RepeatedScalarFieldContainer[str]
    selection: _common_pb2.RowSelection
    view: str
    max_batch_bytes: int
    def __init__(self, collection: _Optional[str] = ..., filters: _Optional[str] = ..., variables: _Optional[_Iterable[str]] = ..., selection: _Optional[_Union[_common_pb2.RowSelection, _Mapping]] = ..., view: _Optional[str] = ..., max_batch_bytes: _Optional[int] = ...) -> None: ...

class PartitionTicket(_message.Message):
    __slots__ = ("collection", "partition", "variables", "selection", "view", "max_batch_bytes")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_BYTES_FIELD_NUMBER: _ClassVar[int]
    collection: str
    partition: str
    variables: _containers.RepeatedScalarFieldContainer[str]
    selection: _common_pb2.RowSelection
    view: str
    max_batch_bytes: int
    def __init__(self, collection: _Optional[str] = ..., partition: _Optional[str] = ..., variables: _Optional[_Iterable[str]] = ..., selection: _Optional[_Union[_common_pb2.RowSelection, _Mapping]] = ..., view: _Optional[str] = ..., max_batch_bytes: _Optional[int] = ...) -> None: ...

class ImmutableTicket(_message.Message):
    __slots__ = ("collection", "variables", "view")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    collection: str
    variables: _containers.RepeatedScalarFieldContainer[str]
    view: str
    def __init__(self, collection: _Optional[str] = ..., variables: _Optional[_Iterable[str]] = ..., view: _Optional[str] = ...) -> None: ...

class Insert(_message.Message):
    __slots__ = ("collection", "merge", "tolerance", "overwrite", "immutable", "rewrite", "view", "partition", "buffer_bytes")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MERGE_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    IMMUTABLE_FIELD_NUMBER: _ClassVar[int]
    REWRITE_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    BUFFER_BYTES_FIELD_NUMBER: _ClassVar[int]
    collection: str
    merge: str
    tolerance: _common_pb2.Tolerance
    overwrite: bool
    immutable: bytes
    rewrite: bool
    view: str
    partition: str
    buffer_bytes: int
    def __init__(self, collection: _Optional[str] = ..., merge: _Optional[str] = ..., tolerance: _Optional[_Union[_common_pb2.Tolerance, _Mapping]] = ..., overwrite: _Optional[bool] = ..., immutable: _Optional[bytes] = ..., rewrite: _Optional[bool] = ..., view: _Optional[str] = ..., partition: _Optional[str] = ..., buffer_bytes: _Optional[int] = ...) -> None: ...

class Command(_message.Message):
    __slots__ = ("query", "partition", "immutable", "insert")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    IMMUTABLE_FIELD_NUMBER: _ClassVar[int]
    INSERT_FIELD_NUMBER: _ClassVar[int]
    query: Query
    partition: PartitionTicket
    immutable: ImmutableTicket
    insert: Insert
    def __init__(self, query: _Optional[_Union[Query, _Mapping]] = ..., partition: _Optional[_Union[PartitionTicket, _Mapping]] = ..., immutable: _Optional[_Union[ImmutableTicket, _Mapping]] = ..., insert: _Optional[_Union[Insert, _Mapping]] = ...) -> None: ...

class EndpointInfo(_message.Message):
    __slots__ = ("partition", "rows")
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    partition: str
    rows: int
    def __init__(self, partition: _Optional[str] = ..., rows: _Optional[int] = ...) -> None: ...

class BatchMetadata(_message.Message):
    __slots__ = ("collection", "partition")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    partition: str
    def __init__(self, collection: _Optional[str] = ..., partition: _Optional[str] = ...) -> None: ...

class InsertResult(_message.Message):
    __slots__ = ("collection", "partitions")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    partitions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., partitions: _Optional[_Iterable[str]] = ...) -> None: ...
