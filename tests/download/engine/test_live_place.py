"""live.place and Task.change_resource as pure functions: where a refreshed playlist's segments go, and which
URL change keeps a recording."""

from __future__ import annotations

import pytest

from download_server.domain.models import ResourceType, Segment, Task, TaskStatus
from download_server.engine.jobs.hls_playlist import MediaPlaylist, RemoteSegment
from download_server.engine.jobs.live import Cursor, Known, place, within_limit
from mediadl_common.errors import FailedPrecondition


def remote(first: int, last: int) -> MediaPlaylist:
    segments = [
        RemoteSegment(n, f"https://o/s{n}.ts", 2.0, None, None, None, None, False) for n in range(first, last + 1)
    ]
    return MediaPlaylist("https://o/live.m3u8", 2.0, False, segments)


KNOWN = Known({(f"https://o/s{100 + i}.ts", None, None): i for i in range(4)}, 3)  # sequences 100-103


def test_a_refresh_that_overlaps_continues_the_numbering() -> None:
    placement = place(Cursor(103, 3), remote(102, 105), KNOWN, elapsed=2.0)
    assert [i for i, _ in placement.new] == [4, 5] and placement.gap is None and not placement.reset


def test_a_window_that_slid_past_leaves_a_gap_of_the_lost_sequences() -> None:
    placement = place(Cursor(103, 3), remote(107, 108), KNOWN, elapsed=8.0)
    assert [i for i, _ in placement.new] == [7, 8]
    assert placement.gap is not None
    assert (placement.gap.first_index, placement.gap.first_sequence, placement.gap.last_sequence) == (4, 104, 106)
    assert placement.gap.seconds == 6.0


@pytest.mark.parametrize("playlist", [remote(0, 2), remote(10_000_000, 10_000_002)])
def test_a_reset_or_an_implausible_jump_is_a_discontinuity_not_a_gap(playlist: MediaPlaylist) -> None:
    placement = place(Cursor(103, 3), playlist, KNOWN, elapsed=4.0)
    assert [i for i, _ in placement.new] == [4, 5, 6] and placement.reset and placement.gap is None


def test_without_a_cursor_a_known_segment_anchors_the_numbering() -> None:
    placement = place(None, remote(102, 104), KNOWN, elapsed=0.0)
    assert [i for i, _ in placement.new] == [4] and placement.cursor == Cursor(104, 4)


def test_max_duration_takes_segments_until_the_limit_is_recorded() -> None:
    new = [Segment("t", i, "u", 2.0) for i in range(5)]
    kept, reached = within_limit(5.0, 0.0, new)
    assert (len(kept), reached) == (3, True)
    assert within_limit(0, 100.0, new) == (new, False)


def task(status: TaskStatus, *, live: bool) -> Task:
    t = Task("t", "u", "v", "room", "", "", "https://o/a.m3u8", ResourceType.HLS, status=status, live=live)
    t.segments_done = 4
    return t


@pytest.mark.parametrize("status", [TaskStatus.PROCESSING, TaskStatus.PAUSED, TaskStatus.PENDING])
def test_a_live_recording_swaps_its_url_and_keeps_what_it_recorded(status: TaskStatus) -> None:
    t = task(status, live=True)
    assert t.change_resource("https://o/b.m3u8") is False
    assert (t.status, t.resource_url, t.segments_done) == (status, "https://o/b.m3u8", 4)


def test_a_running_download_that_is_not_live_cannot_change_its_url() -> None:
    with pytest.raises(FailedPrecondition):
        task(TaskStatus.PROCESSING, live=False).change_resource("https://o/b.m3u8")


@pytest.mark.parametrize("status", [TaskStatus.FAILED, TaskStatus.CANCELLED])
def test_an_ended_live_recording_given_a_new_url_starts_over(status: TaskStatus) -> None:
    t = task(status, live=True)
    assert t.change_resource("https://o/b.m3u8") is True
    assert (t.status, t.segments_done) == (TaskStatus.PENDING, 0)
