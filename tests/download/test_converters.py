"""The proto <-> domain enum tables: every value of either side has exactly one row, and the rows line up."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from download_server.domain.models import FailureStatus, ResourceType, TaskEvent, TaskStatus
from download_server.grpc import converters
from mediadl.download.v1 import download_pb2 as pb
from mediadl_common.errors import InvalidArgument

TABLES: list[tuple[type[enum.Enum], Mapping[Any, int], Any, str]] = [
    (TaskStatus, converters.TASK_STATUSES, pb.TaskStatus, "TASK_STATUS"),
    (FailureStatus, converters.FAILURE_STATUSES, pb.FailureStatus, "FAILURE_STATUS"),
    (ResourceType, converters.RESOURCE_TYPES, pb.ResourceType, "RESOURCE_TYPE"),
]


@pytest.mark.parametrize(("domain", "table", "proto", "prefix"), TABLES, ids=[t[3] for t in TABLES])
def test_every_enum_value_is_mapped_both_ways(
    domain: type[enum.Enum], table: Mapping[Any, int], proto: Any, prefix: str
) -> None:
    assert set(table) == set(domain), "a domain value has no proto value"
    proto_numbers = {value.number for value in proto.DESCRIPTOR.values if value.number != 0}
    assert set(table.values()) == proto_numbers, "a proto value (other than *_UNSPECIFIED) has no domain value"
    assert len(set(table.values())) == len(table), "two domain values share one proto value"
    for member, number in table.items():
        assert proto.Name(number) == f"{prefix}_{member.value}"


FROM_PROTO: list[tuple[Callable[[int], Any], Mapping[Any, int]]] = [
    (converters.resource_type_from_proto, converters.RESOURCE_TYPES),
    (lambda number: converters.task_statuses_from_proto([number])[0], converters.TASK_STATUSES),
    (lambda number: converters.failure_statuses_from_proto([number])[0], converters.FAILURE_STATUSES),
]


@pytest.mark.parametrize(("from_proto", "table"), FROM_PROTO, ids=["resource_type", "task_status", "failure_status"])
def test_proto_numbers_convert_back_and_unknown_ones_are_refused(
    from_proto: Callable[[int], Any], table: Mapping[Any, int]
) -> None:
    for member, number in table.items():
        assert from_proto(number) is member
    with pytest.raises(InvalidArgument, match="unknown value 99"):
        from_proto(99)


def test_unspecified_means_not_given_or_is_refused_as_a_filter() -> None:
    assert converters.resource_type_from_proto(pb.RESOURCE_TYPE_UNSPECIFIED) is None
    with pytest.raises(InvalidArgument, match="TASK_STATUS_UNSPECIFIED is not a status to filter by"):
        converters.task_statuses_from_proto([pb.TASK_STATUS_UNSPECIFIED])
    with pytest.raises(InvalidArgument, match="FAILURE_STATUS_UNSPECIFIED is not a status to filter by"):
        converters.failure_statuses_from_proto([pb.FAILURE_STATUS_UNSPECIFIED])


def test_a_stream_message_is_made_once_per_event_and_shared() -> None:
    event = TaskEvent(
        task_id=str(uuid.uuid4()),
        user_id="u",
        status=TaskStatus.PROCESSING,
        progress=0.5,
        bytes_downloaded=10,
        bytes_total=20,
        segments_done=1,
        segments_failed=0,
        segments_total=2,
        message="half",
    )
    first = converters.event_response(pb.WatchTaskResponse, event)
    assert first == pb.WatchTaskResponse(event=converters.event_to_proto(event))
    assert converters.event_response(pb.WatchTaskResponse, event) is first  # one conversion for every watcher
    other_kind = converters.event_response(pb.WatchTasksResponse, event)
    assert isinstance(other_kind, pb.WatchTasksResponse) and other_kind.event == first.event
    newer = dataclasses.replace(event, progress=0.75, status=TaskStatus.COMPLETED)
    later = converters.event_response(pb.WatchTaskResponse, newer)
    assert later.event.progress == 0.75 and later.event.status == pb.TASK_STATUS_COMPLETED  # never a stale one
