"""Where a DASH track's refs go on each MPD refresh: after the track's cursor (the last ref placed), with the
media that left a live window meanwhile as a gap, and a jump or an encoder restart as a discontinuity."""

from __future__ import annotations

from dataclasses import dataclass

from download_server.engine.jobs import live
from download_server.engine.jobs.mpd_model import Kind, Ref

_EPSILON = 1e-3  # seconds: two refs starting closer than this are the same media


@dataclass(frozen=True)
class Cursor:
    """The last ref placed in a track: what names it, where it lies, and its period."""

    identity: str
    start: float
    end: float
    period: float


@dataclass(frozen=True)
class Planned:
    ref: Ref
    init: str | None
    period: float


@dataclass(frozen=True)
class Gap:
    start: float
    end: float


def after(
    cursor: Cursor | None, planned: list[Planned], known: set[str], has_known: bool, elapsed: float
) -> tuple[list[Planned], Gap | None, bool]:
    """The refs after the track's cursor, a gap of media that left the window meanwhile, and whether the new
    refs start a discontinuity (a resume that fell behind the window, an encoder restart or jump)."""
    if cursor is None:
        anchor = max((i for i, p in enumerate(planned) if p.ref.identity in known), default=None)
        if anchor is not None:
            return planned[anchor + 1 :], None, False
        return planned, None, has_known
    for position, item in enumerate(planned):
        if item.ref.identity == cursor.identity:
            return planned[position + 1 :], None, False
    # The cursor's ref left the window (or URLs changed, a swapped signed URL): place by time instead.
    fresh = [p for p in planned if p.ref.start > cursor.start + _EPSILON]
    last = planned[-1].ref
    if not fresh:
        # Times went far back with other names: the encoder restarted (a reset, never a reason to refetch).
        restarted = last.start + last.duration < cursor.start - live.JUMP_SLACK_SECONDS
        return (planned, None, True) if restarted else ([], None, False)
    lost = fresh[0].ref.start - cursor.end
    if lost <= max(_EPSILON, fresh[0].ref.duration / 2):
        return fresh, None, False
    # As for HLS: more media than the wall time since the last answer could have made is a jump, not a loss.
    window = sum(p.ref.duration for p in planned)
    if lost > 2 * (elapsed + window) + live.JUMP_SLACK_SECONDS:
        return fresh, None, True
    return fresh, Gap(cursor.end, fresh[0].ref.start), False


def row_identity(uri: str, offset: int | None, length: int | None) -> str:
    """A stored row's identity as Ref.identity names the same media."""
    if length is None:
        return uri
    return f"{uri}#{offset or 0}+{length}"


def gap_message(kind: Kind, gap: Gap) -> str:
    seconds = round(gap.end - gap.start, 3)
    return (
        f"{kind} media from {gap.start:.3f} s to {gap.end:.3f} s (about {seconds:g} s) left the live window "
        "before it could be fetched"
    )
