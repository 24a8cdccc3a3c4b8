"""Error messages are clipped in UTF-8 bytes, so a status never carries a caller's megabyte back in trailers."""

from __future__ import annotations

from mediadl_common.errors import (
    MAX_DESCRIPTION_BYTES,
    MAX_MESSAGE_BYTES,
    FieldViolation,
    InvalidArgument,
    NotFound,
    clip,
)


def test_short_text_is_untouched() -> None:
    assert clip("task 1 not found") == "task 1 not found"
    assert NotFound("task 1 not found").message == "task 1 not found"


def test_long_text_is_cut_on_a_character_boundary_and_says_how_much_went() -> None:
    text = "\U0001f600" * 1000  # 4 bytes each
    clipped = clip(text)
    kept = clipped.split("...")[0]
    assert set(kept) == {"\U0001f600"} and len(kept.encode()) <= MAX_MESSAGE_BYTES
    assert clipped.endswith(f"({4000 - MAX_MESSAGE_BYTES} more bytes)")


def test_domain_errors_and_violations_are_clipped() -> None:
    huge = "é" * 400_000
    error = InvalidArgument([FieldViolation("title", f"{huge!r} is too long"), FieldViolation("url", huge)])
    assert all(len(v.description.encode()) <= MAX_DESCRIPTION_BYTES + 40 for v in error.violations)
    assert len(error.message.encode()) <= MAX_MESSAGE_BYTES + 40
    assert len(NotFound(huge).message.encode()) <= MAX_MESSAGE_BYTES + 40
