"""The User entity and the rules its fields obey; violations name the proto fields they concern.

Limits chosen here (API.md fixes only email, username and password):
full_name <= 255 characters, bio <= 1000 characters, avatar_url empty or an http(s) URL <= 2048 characters.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import urlsplit

from mediadl_common.errors import InvalidArgument, Validator

MIN_PASSWORD_BYTES, MAX_PASSWORD_BYTES = 8, 72  # 72: bcrypt ignores anything longer, so we refuse it
MAX_EMAIL_CHARS = 254  # RFC 5321 path limit
MAX_FULL_NAME_CHARS, MAX_BIO_CHARS, MAX_AVATAR_URL_CHARS = 255, 1000, 2048
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]{3,50}")
# Deliberately simple: one @, no spaces, a dotted domain. Deliverability is the mail server's business.
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
PROFILE_FIELDS = ("full_name", "bio", "avatar_url")
# PostgreSQL refuses NUL in text; other C0/C1 control characters and bidirectional overrides (which make a
# name read differently from what it is: "Trojan Source") are never meant in a name, address or URL.
_BIDI = "\u202a-\u202e\u2066-\u2069"
CONTROL_CHARS = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
# Line breaks (LF, and CR: a browser sends CRLF) and tabs may stand in a bio.
CONTROL_CHARS_BUT_LINES = re.compile(f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}]")


@dataclass(frozen=True)
class User:
    """A registered account. `password_hash` never leaves the server (converters do not know it)."""

    id: str
    email: str
    username: str
    password_hash: str = field(repr=False)
    full_name: str
    bio: str
    avatar_url: str
    is_active: bool
    is_superuser: bool
    create_time: datetime
    update_time: datetime
    # Access tokens issued before this moment are refused (deactivation, password change, refresh-token theft).
    tokens_revoked_at: datetime | None = None

    @classmethod
    def new(
        cls, *, email: str, username: str, password_hash: str, full_name: str, now: datetime, superuser: bool = False
    ) -> User:
        return cls(
            id=str(uuid.uuid4()),
            email=email,
            username=username,
            password_hash=password_hash,
            full_name=full_name,
            bio="",
            avatar_url="",
            is_active=True,
            is_superuser=superuser,
            create_time=now,
            update_time=now,
        )


@dataclass(frozen=True)
class ProfileChanges:
    """UpdateMe's values; `paths` is the field mask (empty: every non-empty value)."""

    full_name: str = ""
    bio: str = ""
    avatar_url: str = ""
    paths: Sequence[str] = ()

    def selected(self) -> dict[str, str]:
        """The fields to write, validated; raises InvalidArgument naming each bad field or mask path."""
        values = {"full_name": self.full_name, "bio": self.bio, "avatar_url": self.avatar_url}
        check = Validator()
        unknown = [p for p in self.paths if p not in PROFILE_FIELDS]
        check.check(
            not unknown,
            "update_mask",
            f"unknown path(s) {', '.join(map(repr, unknown))}: allowed are {', '.join(PROFILE_FIELDS)}",
        )
        chosen = [p for p in PROFILE_FIELDS if p in self.paths] if self.paths else [k for k, v in values.items() if v]
        selected = {name: values[name] for name in chosen}
        _check_profile(check, selected)
        check.raise_if_any()
        return selected

    def apply(self, user: User, now: datetime) -> User:
        selected = self.selected()
        if all(getattr(user, name) == value for name, value in selected.items()):
            return user
        return replace(
            user,
            full_name=selected.get("full_name", user.full_name),
            bio=selected.get("bio", user.bio),
            avatar_url=selected.get("avatar_url", user.avatar_url),
            update_time=now,
        )


def username_key(username: str) -> str:
    """The form usernames are unique in: `Ada` and `ada` are one name."""
    return username.lower()


def has_control_chars(text: str) -> bool:
    return CONTROL_CHARS.search(text) is not None


def normalise_email(email: str) -> str:
    """The stored form: surrounding blanks dropped, lower-cased (unique and looked up in this form)."""
    return email.strip().lower()


def check_registration(check: Validator, *, email: str, username: str, password: str, full_name: str) -> None:
    """Add every violation of a new account's fields to `check` (email given already normalised)."""
    check_email(check, email)
    check.check(
        USERNAME_PATTERN.fullmatch(username) is not None,
        "username",
        "must be 3 to 50 characters of letters, digits, '_', '.' or '-'",
    )
    check_password(check, "password", password)
    _check_profile(check, {"full_name": full_name})


def validate_registration(*, email: str, username: str, password: str, full_name: str) -> None:
    check = Validator()
    check_registration(check, email=email, username=username, password=password, full_name=full_name)
    check.raise_if_any()


def check_email(check: Validator, email: str, field_name: str = "email") -> None:
    if not check.check(bool(email), field_name, "is required"):
        return
    check.check(len(email) <= MAX_EMAIL_CHARS, field_name, f"must be at most {MAX_EMAIL_CHARS} characters")
    if not check.check(not CONTROL_CHARS.search(email), field_name, "must not contain control characters"):
        return
    check.check(EMAIL_PATTERN.fullmatch(email) is not None, field_name, "is not a valid email address")


def check_password(check: Validator, field_name: str, password: str) -> None:
    size = len(password.encode("utf-8"))
    check.check(
        MIN_PASSWORD_BYTES <= size <= MAX_PASSWORD_BYTES,
        field_name,
        f"must be {MIN_PASSWORD_BYTES} to {MAX_PASSWORD_BYTES} bytes in UTF-8 (got {size})",
    )


def parse_user_id(value: str, field_name: str = "user_id") -> str:
    """The canonical form of a UUID string, or InvalidArgument naming `field_name`."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise InvalidArgument.field(field_name, "must be a UUID") from None


def check_full_name(check: Validator, name: str) -> None:
    check.check(len(name) <= MAX_FULL_NAME_CHARS, "full_name", f"must be at most {MAX_FULL_NAME_CHARS} characters")
    check.check(not CONTROL_CHARS.search(name), "full_name", "must not contain control characters")


def _check_profile(check: Validator, values: dict[str, str]) -> None:
    if "full_name" in values:
        check_full_name(check, values["full_name"])
    if "bio" in values:
        bio = values["bio"]
        check.check(len(bio) <= MAX_BIO_CHARS, "bio", f"must be at most {MAX_BIO_CHARS} characters")
        check.check(not CONTROL_CHARS_BUT_LINES.search(bio), "bio", "must not contain control characters")
    if values.get("avatar_url"):
        url = values["avatar_url"]
        try:
            parts = urlsplit(url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname) and not CONTROL_CHARS.search(url)
        except ValueError:
            ok = False
        check.check(ok, "avatar_url", "must be empty or an http(s) URL")
        check.check(
            len(url) <= MAX_AVATAR_URL_CHARS, "avatar_url", f"must be at most {MAX_AVATAR_URL_CHARS} characters"
        )
