"""The CLI's resource type guess: a URL's extension names its type, DASH MPDs included."""

from __future__ import annotations

import pytest

from clients.cli.context import CliError
from clients.cli.parser import build_parser
from clients.cli.task_commands import guess_resource_type
from clients.models import ResourceType


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://cdn.example.com/vod/manifest.mpd", ResourceType.DASH),
        ("https://cdn.example.com/live/STREAM.MPD?token=abc", ResourceType.DASH),
        ("https://cdn.example.com/live/index.m3u8", ResourceType.HLS),
        ("https://cdn.example.com/a.mp4", ResourceType.MP4),
    ],
)
def test_the_extension_names_the_type(url: str, kind: ResourceType) -> None:
    assert guess_resource_type(url) is kind


def test_an_unknown_extension_asks_for_type_dash_among_the_choices() -> None:
    with pytest.raises(CliError) as refused:
        guess_resource_type("https://cdn.example.com/stream")
    assert "dash" in str(refused.value)


def test_type_dash_is_accepted() -> None:
    args = build_parser().parse_args(
        ["task", "create", "--url", "https://x.example.com/s", "--type", "DASH", "--liveroom-id", "r"]
    )
    assert args.type == "dash"
