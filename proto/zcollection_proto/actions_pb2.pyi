from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListCollections(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCollectionsResult(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collections: _Optional[_Iterable[str]] = ...) -> None: ...

class CollectionInfo(_message.Message):
    __slots__ = ("collection", "schema", "axis", "partitioning", "catalog_enabled", "read_only", "format_version", "views", "partition_count")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    AXIS_FIELD_NUMBER: _ClassVar[int]
    PARTITIONING_FIELD_NUMBER: _ClassVar[int]
    CATALOG_ENABLED_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    VIEWS_FIELD_NUMBER: _ClassVar[int]
    PARTITION_COUNT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    schema: str
    axis: str
    partitioning: str
    catalog_enabled: bool
    read_only: bool
    format_version: int
    views: _containers.RepeatedScalarFieldContainer[str]
    partition_count: int
    def __init__(self, collection: _Optional[str] = ..., schema: _Optional[str] = ..., axis: _Optional[str] = ..., partitioning: _Optional[str] = ..., catalog_enabled: _Optional[bool] = ..., read_only: _Optional[bool] = ..., format_version: _Optional[int] = ..., views: _Optional[_Iterable[str]] = ..., partition_count: _Optional[int] = ...) -> None: ...

class Describe(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class DescribeResult(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: CollectionInfo
    def __init__(self, info: _Optional[_Union[CollectionInfo, _Mapping]] = ...) -> None: ...

class CreateCollection(_message.Message):
    __slots__ = ("collection", "schema", "axis", "partitioning", "catalog_enabled", "overwrite")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    AXIS_FIELD_NUMBER: _ClassVar[int]
    PARTITIONING_FIELD_NUMBER: _ClassVar[int]
    CATALOG_ENABLED_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    schema: str
    axis: str
    partitioning: str
    catalog_enabled: bool
    overwrite: bool
    def __init__(self, collection: _Optional[str] = ..., schema: _Optional[str] = ..., axis: _Optional[str] = ..., partitioning: _Optional[str] = ..., catalog_enabled: _Optional[bool] = ..., overwrite: _Optional[bool] = ...) -> None: ...

class CreateCollectionResult(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: CollectionInfo
    def __init__(self, info: _Optional[_Union[CollectionInfo, _Mapping]] = ...) -> None: ...

class DeleteCollection(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class DeleteCollectionResult(_message.Message):
    __slots__ = ("collection", "deleted")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    collection: str
    deleted: bool
    def __init__(self, collection: _Optional[str] = ..., deleted: _Optional[bool] = ...) -> None: ...

class ListPartitions(_message.Message):
    __slots__ = ("collection", "filters")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    filters: str
    def __init__(self, collection: _Optional[str] = ..., filters: _Optional[str] = ...) -> None: ...

class ListPartitionsResult(_message.Message):
    __slots__ = ("partitions",)
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    partitions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, partitions: _Optional[_Iterable[str]] = ...) -> None: ...

class DropPartitions(_message.Message):
    __slots__ = ("collection", "filters", "all")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    collection: str
    filters: str
    all: bool
    def __init__(self, collection: _Optional[str] = ..., filters: _Optional[str] = ..., all: _Optional[bool] = ...) -> None: ...

class DropPartitionsResult(_message.Message):
    __slots__ = ("partitions",)
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    partitions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, partitions: _Optional[_Iterable[str]] = ...) -> None: ...

class RepairCatalog(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class RepairCatalogResult(_message.Message):
    __slots__ = ("partitions",)
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    partitions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, partitions: _Optional[_Iterable[str]] = ...) -> None: ...

class ViewInfo(_message.Message):
    __slots__ = ("collection", "view", "schema", "variables", "reference")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    view: str
    schema: str
    variables: _containers.RepeatedScalarFieldContainer[str]
    reference: str
    def __init__(self, collection: _Optional[str] = ..., view: _Optional[str] = ..., schema: _Optional[str] = ..., variables: _Optional[_Iterable[str]] = ..., reference: _Optional[str] = ...) -> None: ...

class CreateView(_message.Message):
    __slots__ = ("collection", "view", "variables", "overwrite")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    view: str
    variables: _containers.RepeatedScalarFieldContainer[str]
    overwrite: bool
    def __init__(self, collection: _Optional[str] = ..., view: _Optional[str] = ..., variables: _Optional[_Iterable[str]] = ..., overwrite: _Optional[bool] = ...) -> None: ...

class CreateViewResult(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: ViewInfo
    def __init__(self, info: _Optional[_Union[ViewInfo, _Mapping]] = ...) -> None: ...

class DescribeView(_message.Message):
    __slots__ = ("collection", "view")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    collection: str
    view: str
    def __init__(self, collection: _Optional[str] = ..., view: _Optional[str] = ...) -> None: ...

class DescribeViewResult(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: ViewInfo
    def __init__(self, info: _Optional[_Union[ViewInfo, _Mapping]] = ...) -> None: ...

class ListViews(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class ListViewsResult(_message.Message):
    __slots__ = ("views",)
    VIEWS_FIELD_NUMBER: _ClassVar[int]
    views: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, views: _Optional[_Iterable[str]] = ...) -> None: ...

class ServerInfo(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ServerInfoResult(_message.Message):
    __slots__ = ("version", "protocol", "format_version", "max_batch_bytes", "merge_strategies", "locations", "auth")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_BYTES_FIELD_NUMBER: _ClassVar[int]
    MERGE_STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    LOCATIONS_FIELD_NUMBER: _ClassVar[int]
    AUTH_FIELD_NUMBER: _ClassVar[int]
    version: str
    protocol: str
    format_version: int
    max_batch_bytes: int
    merge_strategies: _containers.RepeatedScalarFieldContainer[str]
    locations: _containers.RepeatedScalarFieldContainer[str]
    auth: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[str] = ..., protocol: _Optional[str] = ..., format_version: _Optional[int] = ..., max_batch_bytes: _Optional[int] = ..., merge_strategies: _Optional[_Iterable[str]] = ..., locations: _Optional[_Iterable[str]] = ..., auth: _Optional[_Iterable[str]] = ...) -> None: ...

class Health(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HealthResult(_message.Message):
    __slots__ = ("status", "detail")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[HealthResult.Status]
        SERVING: _ClassVar[HealthResult.Status]
        NOT_SERVING: _ClassVar[HealthResult.Status]
    STATUS_UNSPECIFIED: HealthResult.Status
    SERVING: HealthResult.Status
    NOT_SERVING: HealthResult.Status
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    status: HealthResult.Status
    detail: str
    def __init__(self, status: _Optional[_Union[HealthResult.Status, str]] = ..., detail: _Optional[str] = ...) -> None: ...
