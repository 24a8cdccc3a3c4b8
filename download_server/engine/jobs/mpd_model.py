"""What a remote MPEG-DASH MPD plans, as plain facts (mpd.parse builds them): per period, the chosen video
and audio track and its segments (absolute URLs, byte ranges, start times), the init section, or a sidx still
to be read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["video", "audio"]
KINDS: tuple[Kind, ...] = ("video", "audio")
# Segments one MPD may plan (over all periods and both tracks), the same bound as an HLS playlist's entries.
MAX_SEGMENTS = 100_000


@dataclass(frozen=True)
class Ref:
    """One media segment: where it is, and where it lies on the presentation's time line (seconds)."""

    url: str
    start: float
    duration: float
    byterange: tuple[int, int] | None = None  # (offset, length)

    @property
    def identity(self) -> str:
        """What names the same media across refreshes of a live MPD."""
        return self.url if self.byterange is None else f"{self.url}#{self.byterange[0]}+{self.byterange[1]}"


@dataclass(frozen=True)
class SidxPlan:
    """SegmentBase: the segments are listed by the file's own sidx box, read with a byte-range request."""

    url: str
    index_range: tuple[int, int]  # (offset, length)
    start: float  # the period's start on the presentation time line


@dataclass(frozen=True)
class Track:
    kind: Kind
    representation: str
    bandwidth: int
    init: str | None  # the init section's URL, a byte range riding in a "#mediadl-range=" fragment
    refs: list[Ref]
    sidx: SidxPlan | None = None
    choices: int = 1  # how many representations of this kind the period offered
    codecs: str = ""  # the representation's (or its AdaptationSet's) @codecs, carried into the local MPD


@dataclass(frozen=True)
class Period:
    start: float
    tracks: dict[Kind, Track]


@dataclass(frozen=True)
class Manifest:
    url: str
    dynamic: bool
    update_period: float  # minimumUpdatePeriod (or a segment's duration) for a live MPD; 0 for VOD
    periods: list[Period] = field(default_factory=list)
    starts_in: float = 0.0  # a live MPD's availabilityStartTime still ahead, in seconds (0 once it has passed)

    @property
    def segment_duration(self) -> float:
        durations = [r.duration for p in self.periods for t in p.tracks.values() for r in t.refs[-3:]]
        return max(durations, default=2.0)

    @property
    def listed(self) -> bool:
        """Whether any track lists a segment (a live MPD fetched before its stream began lists none)."""
        return any(t.refs or t.sidx for p in self.periods for t in p.tracks.values())
