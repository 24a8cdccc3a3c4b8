"""The CLI's resource types: guessed from the URL's extension (a signed query string does not matter), or
given with --type."""

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
        ("https://cdn.example.com/a.MP4", ResourceType.MP4),
        ("https://pull.example.com/live/room_42.flv?txSecret=abc&txTime=65f0", ResourceType.FLV),
        ("https://cdn.example.com/p.png", ResourceType.IMAGE),
    ],
)
def test_the_type_is_guessed_from_the_extension(url: str, kind: ResourceType) -> None:
    assert guess_resource_type(url) is kind


def test_an_unknown_extension_names_the_choices() -> None:
    with pytest.raises(CliError) as refused:
        guess_resource_type("https://cdn.example.com/stream")
    assert "--type hls|dash|mp4|image|flv" in str(refused.value)


@pytest.mark.parametrize(("given", "kind"), [("FLV", ResourceType.FLV), ("DASH", ResourceType.DASH)])
def test_type_is_accepted_in_any_case(given: str, kind: ResourceType) -> None:
    args = build_parser().parse_args(
        ["task", "create", "--url", "https://pull.example.com/x", "--type", given, "--liveroom-id", "r"]
    )
    assert ResourceType(args.type.upper()) is kind
