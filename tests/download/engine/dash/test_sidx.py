"""The sidx box reader on hand-built boxes: offsets from the end of the index range, durations in seconds,
and what it refuses (a hierarchical index, a box cut short, more entries than allowed)."""

from __future__ import annotations

import struct

import pytest

from download_server.engine.failures import ErrorType, FetchError
from download_server.engine.jobs import sidx


def _box(
    references: list[tuple[int, int]], *, version: int = 0, first_offset: int = 0, hierarchical: bool = False
) -> bytes:
    times = struct.pack(">II", 0, first_offset) if version == 0 else struct.pack(">QQ", 0, first_offset)
    body = struct.pack(">B3xII", version, 1, 1000) + times + struct.pack(">HH", 0, len(references))
    for size, duration in references:
        body += struct.pack(">III", size | (1 << 31 if hierarchical else 0), duration, 0x90000000)
    return struct.pack(">I4s", 8 + len(body), b"sidx") + body


@pytest.mark.parametrize("version", [0, 1])
def test_subsegments_follow_the_index_range(version: int) -> None:
    data = b"\x00\x00\x00\x10stypmsdhmsdh" + _box([(100, 2000), (150, 1500)], version=version, first_offset=4)
    parts = sidx.parse(data, 1000, max_entries=10)
    assert parts == [sidx.Subsegment(1004, 100, 0.0, 2.0), sidx.Subsegment(1104, 150, 2.0, 1.5)]


@pytest.mark.parametrize(
    ("data", "error_type"),
    [
        (_box([(100, 1000)], hierarchical=True), ErrorType.BAD_CONTENT),
        (_box([(100, 1000), (100, 1000)])[:-6], ErrorType.BAD_CONTENT),
        (_box([(1, 1)] * 11), ErrorType.TOO_LARGE),
        (b"\x00\x00\x00\x08free", ErrorType.BAD_CONTENT),
    ],
    ids=["hierarchical", "cut", "too-many", "no-sidx"],
)
def test_refused_indexes(data: bytes, error_type: ErrorType) -> None:
    with pytest.raises(FetchError) as refused:
        sidx.parse(data, 0, max_entries=10)
    assert refused.value.error_type is error_type
