"""Unit tests of codec stacks, the named profiles of the on-disk format and the shard rule."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy
import pytest
import zcollection as zc
from hypothesis import given, settings
from hypothesis import strategies as st
from zcollection.codecs import CodecStack, shard_decision

MIB = 1024 * 1024
BYTES_LE = {"name": "bytes", "configuration": {"endian": "little"}}


def _zstd(stack_json: dict[str, Any]) -> dict[str, Any]:
    (codec,) = stack_json["bytes_to_bytes"]
    assert codec["name"] == "zstd"
    conf: dict[str, Any] = codec["configuration"]
    return conf


# -- profiles -----------------------------------------------------------------------------------


def test_profile_names() -> None:
    names = zc.codecs.profile_names()
    assert isinstance(names, tuple)
    assert names == ("local-fast", "cloud-balanced", "cloud-cold")
    assert zc.codecs.DEFAULT_PROFILE == "cloud-balanced"
    assert zc.codecs.DEFAULT_PROFILE in names


@pytest.mark.parametrize(
    ("name", "level", "sharded", "target"),
    [
        ("local-fast", 3, False, None),
        ("cloud-balanced", 3, True, 128 * MIB),
        ("cloud-cold", 9, True, 512 * MIB),
    ],
)
def test_profile_matches_the_on_disk_table(
    name: str, level: int, sharded: bool, target: int | None
) -> None:
    stack = zc.codecs.profile(name)
    assert isinstance(stack, CodecStack)
    payload = stack.to_json()
    assert set(payload) == {
        "array_to_array",
        "array_to_bytes",
        "bytes_to_bytes",
        "sharded",
        "shard_target_bytes",
    }
    assert payload["array_to_array"] == []
    assert payload["array_to_bytes"] == BYTES_LE
    assert _zstd(payload)["level"] == level
    assert payload["sharded"] is sharded
    assert payload["shard_target_bytes"] == target
    assert stack.sharded is sharded
    assert stack.shard_target_bytes == target
    json.dumps(payload, allow_nan=False)


def test_default_profile() -> None:
    assert zc.codecs.profile() == zc.codecs.profile("cloud-balanced")
    assert zc.codecs.profile(None).to_json() == zc.codecs.profile("cloud-balanced").to_json()


def test_unknown_profile_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="no-such"):
        zc.codecs.profile("no-such")
    with pytest.raises(KeyError):
        zc.codecs.auto_codecs(numpy.dtype("f4"), "no-such")
    with pytest.raises(KeyError):
        zc.codecs.profile("Cloud-Balanced")  # names are exact


def test_profile_overrides() -> None:
    delta = {"name": "delta", "configuration": {"dtype": "<i8"}}
    gzip = {"name": "gzip", "configuration": {"level": 5}}
    stack = zc.codecs.profile("cloud-cold", filters=[delta], compressor=gzip)
    payload = stack.to_json()
    assert payload["array_to_array"] == [delta]
    assert payload["bytes_to_bytes"] == [gzip]  # the whole compressor pipeline is replaced
    assert payload["array_to_bytes"] == BYTES_LE
    assert payload["sharded"] is True
    assert payload["shard_target_bytes"] == 512 * MIB
    # only the given override applies
    only_filters = zc.codecs.profile("local-fast", filters=(delta,)).to_json()
    assert only_filters["array_to_array"] == [delta]
    assert _zstd(only_filters)["level"] == 3
    only_compressor = zc.codecs.profile("local-fast", compressor=gzip).to_json()
    assert only_compressor["array_to_array"] == []
    assert only_compressor["bytes_to_bytes"] == [gzip]
    # overrides do not leak into the registered profile
    assert zc.codecs.profile("cloud-cold").to_json()["bytes_to_bytes"][0]["name"] == "zstd"
    assert zc.codecs.profile("cloud-cold").array_to_array == ()
    # the stack holds copies: mutating the caller's dict later changes nothing
    gzip["configuration"]["level"] = 1
    assert stack.bytes_to_bytes[0]["configuration"]["level"] == 5


def test_profiles_are_independent_copies() -> None:
    payload = zc.codecs.profile("local-fast").to_json()
    payload["bytes_to_bytes"][0]["configuration"]["level"] = 22
    payload["array_to_bytes"]["configuration"]["endian"] = "big"
    assert _zstd(zc.codecs.profile("local-fast").to_json())["level"] == 3
    assert zc.codecs.profile("local-fast").array_to_bytes == BYTES_LE


@pytest.mark.parametrize("dtype", ["f4", "i8", "M8[ns]", "U8", "?"])
def test_auto_codecs(dtype: str) -> None:
    assert zc.codecs.auto_codecs(numpy.dtype(dtype)) == zc.codecs.profile()
    assert zc.codecs.auto_codecs(numpy.dtype(dtype), "local-fast") == zc.codecs.profile(
        "local-fast"
    )


def test_a_variable_without_codecs_gets_the_default_profile() -> None:
    var = zc.VariableSchema("v", "f4", ("x",))
    assert var.codecs == zc.codecs.profile(zc.codecs.DEFAULT_PROFILE)
    explicit = zc.VariableSchema("v", "f4", ("x",), codecs=zc.codecs.profile("cloud-cold"))
    assert explicit.codecs == zc.codecs.profile("cloud-cold")


# -- CodecStack ---------------------------------------------------------------------------------


def test_codec_stack_defaults() -> None:
    stack = CodecStack()
    assert stack.to_json() == {
        "array_to_array": [],
        "array_to_bytes": None,
        "bytes_to_bytes": [],
        "sharded": False,
        "shard_target_bytes": None,
    }
    assert CodecStack.from_json({}) == stack


def test_codec_stack_validation() -> None:
    with pytest.raises(zc.SchemaError):
        CodecStack(sharded=True)  # sharded needs a target
    with pytest.raises(zc.SchemaError):
        CodecStack(sharded=True, shard_target_bytes=0)
    with pytest.raises(zc.SchemaError):
        CodecStack(bytes_to_bytes=({"configuration": {}},))  # no name
    with pytest.raises(zc.SchemaError):
        CodecStack(array_to_bytes={"name": "bytes", "configuration": "little"})
    with pytest.raises(zc.SchemaError):
        CodecStack.from_json([])  # type: ignore[arg-type]
    # a target without sharding means nothing and is dropped
    assert CodecStack(shard_target_bytes=10).shard_target_bytes is None


_codec = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["zstd", "gzip", "blosc", "crc32c", "delta", "bytes"]),
        "configuration": st.dictionaries(
            st.text("abcdef", min_size=1, max_size=4),
            st.integers(-5, 5) | st.text(max_size=4) | st.booleans() | st.none(),
            max_size=3,
        ),
    }
)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(_codec, max_size=3),
    st.none() | _codec,
    st.lists(_codec, max_size=3),
    st.none() | st.integers(1, 2**40),
)
def test_codec_stack_json_round_trip(
    filters: list[dict[str, Any]],
    serializer: dict[str, Any] | None,
    compressors: list[dict[str, Any]],
    target: int | None,
) -> None:
    stack = CodecStack(
        array_to_array=tuple(filters),
        array_to_bytes=serializer,
        bytes_to_bytes=tuple(compressors),
        sharded=target is not None,
        shard_target_bytes=target,
    )
    payload = stack.to_json()
    assert payload["array_to_array"] == filters
    assert payload["array_to_bytes"] == serializer
    assert payload["bytes_to_bytes"] == compressors
    assert payload["sharded"] is (target is not None)
    assert payload["shard_target_bytes"] == target
    restored = CodecStack.from_json(json.loads(json.dumps(payload)))
    assert restored == stack
    assert restored.to_json() == payload
    assert hash(restored) == hash(stack)


# -- shard rule ---------------------------------------------------------------------------------


def _model(
    shape: tuple[int, ...], chunks: tuple[int, ...], itemsize: int, target: int
) -> tuple[int, ...] | None:
    """The shard rule of the on-disk spec, written out step by step.

    Start from the inner chunk shape; while doubling keeps the shard at or under the target,
    double the multiplier of the dimension with the largest current extent among those that
    still fit whole chunks inside the array (ties: the first such dimension); clip to the array
    shape; no sharding when the result equals the chunk shape.
    """
    multipliers = [1] * len(chunks)
    while True:
        extents = [c * m for c, m in zip(chunks, multipliers, strict=True)]
        nbytes = itemsize
        for e in extents:
            nbytes *= e
        if 2 * nbytes > target:
            break
        growable = [i for i, e in enumerate(extents) if 2 * e <= shape[i]]
        if not growable:
            break
        largest = max(extents[i] for i in growable)
        pick = next(i for i in growable if extents[i] == largest)
        multipliers[pick] *= 2
    extents = [c * m for c, m in zip(chunks, multipliers, strict=True)]
    # (an empty axis keeps its one-element chunk)
    result = tuple(min(e, max(n, 1)) for e, n in zip(extents, shape, strict=True))
    return None if result == tuple(chunks) else result


@pytest.mark.parametrize(
    ("shape", "chunks", "itemsize", "target", "expected"),
    [
        # 1-D: 8 kB chunks, 64 kB target -> 8 chunks per shard
        ((10**6,), (1000,), 8, 64_000, (8000,)),
        # the shard stops before leaving the array (1600 > 1000)
        ((1000, 240), (100, 240), 4, 128 * MIB, (800, 240)),
        # a single chunk already fills the array: nothing to shard
        ((100,), (100,), 8, 128 * MIB, None),
        # one chunk is already over the target
        ((10**6,), (1000,), 8, 4000, None),
        # doubling once would exceed the target (2 * 8000 > 15999)
        ((10**6,), (1000,), 8, 15_999, None),
        # exactly at the target is allowed
        ((10**6,), (1000,), 8, 16_000, (2000,)),
        # 2-D: the dimension with the largest extent keeps growing while it fits ...
        ((64, 64), (4, 2), 1, 64, (32, 2)),
        # ... then the next one; a tie goes to the first dimension
        ((8, 8), (1, 1), 1, 1000, (8, 8)),
        ((8, 8), (1, 1), 1, 16, (8, 2)),
        ((3, 5), (3, 1), 1, 1000, (3, 4)),
        # an empty array (chunk 1 along an empty axis) is never sharded
        ((0, 10), (1, 10), 4, 128 * MIB, None),
    ],
)
def test_shard_decision_examples(
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    itemsize: int,
    target: int,
    expected: tuple[int, ...] | None,
) -> None:
    assert shard_decision(shape, chunks, itemsize, target) == expected
    assert _model(shape, chunks, itemsize, target) == expected


@st.composite
def _layouts(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...], int, int]:
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 5000)) for _ in range(ndim))
    chunks = tuple(draw(st.integers(1, n)) for n in shape)  # as the writer clips them
    itemsize = draw(st.sampled_from([1, 2, 4, 8, 16]))
    target = draw(st.integers(1, 2**28))
    return shape, chunks, itemsize, target


@settings(max_examples=500, deadline=None)
@given(_layouts())
def test_shard_decision_follows_the_rule(
    layout: tuple[tuple[int, ...], tuple[int, ...], int, int],
) -> None:
    shape, chunks, itemsize, target = layout
    result = shard_decision(shape, chunks, itemsize, target)
    assert result == _model(shape, chunks, itemsize, target)
    if result is None:
        return
    assert len(result) == len(shape)
    assert result != chunks
    for s, c, n in zip(result, chunks, shape, strict=True):
        assert s % c == 0, (result, chunks)  # whole chunks only
        assert c <= s <= n  # inside the array
    assert math.prod(result) * itemsize <= target
    # a shard holds at least two chunks
    assert math.prod(result) >= 2 * math.prod(chunks)


@settings(max_examples=200, deadline=None)
@given(_layouts())
def test_a_larger_target_never_gives_a_smaller_shard(
    layout: tuple[tuple[int, ...], tuple[int, ...], int, int],
) -> None:
    shape, chunks, itemsize, target = layout
    small = shard_decision(shape, chunks, itemsize, target) or chunks
    large = shard_decision(shape, chunks, itemsize, 2 * target) or chunks
    assert all(a <= b for a, b in zip(small, large, strict=True))
