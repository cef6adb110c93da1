from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TimeValue(_message.Message):
    __slots__ = ("count", "unit")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    count: int
    unit: str
    def __init__(self, count: _Optional[int] = ..., unit: _Optional[str] = ...) -> None: ...

class Scalar(_message.Message):
    __slots__ = ("bool_value", "int_value", "uint_value", "float_value", "string_value", "bytes_value", "datetime_value", "timedelta_value")
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    UINT_VALUE_FIELD_NUMBER: _ClassVar[int]
    FLOAT_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    BYTES_VALUE_FIELD_NUMBER: _ClassVar[int]
    DATETIME_VALUE_FIELD_NUMBER: _ClassVar[int]
    TIMEDELTA_VALUE_FIELD_NUMBER: _ClassVar[int]
    bool_value: bool
    int_value: int
    uint_value: int
    float_value: float
    string_value: str
    bytes_value: bytes
    datetime_value: TimeValue
    timedelta_value: TimeValue
    def __init__(self, bool_value: _Optional[bool] = ..., int_value: _Optional[int] = ..., uint_value: _Optional[int] = ..., float_value: _Optional[float] = ..., string_value: _Optional[str] = ..., bytes_value: _Optional[bytes] = ..., datetime_value: _Optional[_Union[TimeValue, _Mapping]] = ..., timedelta_value: _Optional[_Union[TimeValue, _Mapping]] = ...) -> None: ...

class Bound(_message.Message):
    __slots__ = ("text", "scalar", "inclusive")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCALAR_FIELD_NUMBER: _ClassVar[int]
    INCLUSIVE_FIELD_NUMBER: _ClassVar[int]
    text: str
    scalar: Scalar
    inclusive: bool
    def __init__(self, text: _Optional[str] = ..., scalar: _Optional[_Union[Scalar, _Mapping]] = ..., inclusive: _Optional[bool] = ...) -> None: ...

class RowSelection(_message.Message):
    __slots__ = ("variable", "lower", "upper")
    VARIABLE_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    variable: str
    lower: Bound
    upper: Bound
    def __init__(self, variable: _Optional[str] = ..., lower: _Optional[_Union[Bound, _Mapping]] = ..., upper: _Optional[_Union[Bound, _Mapping]] = ...) -> None: ...

class Tolerance(_message.Message):
    __slots__ = ("value", "unit")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    value: float
    unit: str
    def __init__(self, value: _Optional[float] = ..., unit: _Optional[str] = ...) -> None: ...
