"""The user rules as plain functions: field mask semantics, email normalising, id parsing (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from auth_server.domain.users import ProfileChanges, User, normalise_email, parse_user_id, validate_registration
from mediadl_common.errors import InvalidArgument

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def user(**fields: str) -> User:
    base = User.new(email="a@example.com", username="abc", password_hash="h", full_name="A", now=T0)
    return ProfileChanges(**fields).apply(base, T0) if fields else base


def test_an_empty_mask_takes_the_non_empty_fields() -> None:
    changed = ProfileChanges(bio="hello").apply(user(full_name="Name", avatar_url="http://x.example/a"), T0)

    assert (changed.full_name, changed.bio, changed.avatar_url) == ("Name", "hello", "http://x.example/a")


def test_a_mask_takes_exactly_its_paths_even_empty_values() -> None:
    before = user(full_name="Name", bio="old")
    changed = ProfileChanges(full_name="ignored", bio="", paths=["bio"]).apply(before, T0 + timedelta(seconds=1))

    assert (changed.full_name, changed.bio, changed.update_time) == ("Name", "", T0 + timedelta(seconds=1))


def test_a_change_that_changes_nothing_keeps_the_update_time() -> None:
    before = user(full_name="Same")

    assert ProfileChanges(full_name="Same").apply(before, T0 + timedelta(days=1)) is before


def test_unknown_mask_paths_and_bad_values_are_reported_together() -> None:
    with pytest.raises(InvalidArgument) as raised:
        ProfileChanges(avatar_url="javascript:alert(1)", paths=["avatar_url", "password_hash"]).selected()

    assert {v.field for v in raised.value.violations} == {"update_mask", "avatar_url"}


def test_registration_collects_every_violation() -> None:
    with pytest.raises(InvalidArgument) as raised:
        validate_registration(email="", username="", password="", full_name="x\x00")

    assert [v.field for v in raised.value.violations] == ["email", "username", "password", "full_name"]


@pytest.mark.parametrize(
    "email", ["a@b", "a b@c.d", "@c.d", "a@@c.d", "a@c..d", "nul\x00@c.d", "a@" + "c" * 260 + ".d"]
)
def test_invalid_emails(email: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validate_registration(email=email, username="abc", password="p" * 8, full_name="")

    assert [v.field for v in raised.value.violations] == ["email"]


def test_emails_are_normalised_to_trimmed_lower_case() -> None:
    assert normalise_email("  Ada@EXAMPLE.Com\t") == "ada@example.com"


def test_user_ids_are_canonical_uuids() -> None:
    assert parse_user_id("6F9619FF-8B86-D011-B42D-00CF4FC964FF") == "6f9619ff-8b86-d011-b42d-00cf4fc964ff"
    with pytest.raises(InvalidArgument) as raised:
        parse_user_id("../etc/passwd")
    assert raised.value.violations[0].field == "user_id"


def test_the_password_hash_stays_out_of_repr() -> None:
    assert "password_hash" not in repr(
        User.new(email="a@b.c", username="abc", password_hash="$2b$x", full_name="", now=T0)
    )
