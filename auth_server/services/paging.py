"""Signed, opaque page tokens for ListUsers: a keyset cursor (create_time, id) bound to caller and query."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

from mediadl_common.errors import InvalidArgument, Validator

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 20, 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BAD_TOKEN = "is invalid, was altered, or belongs to another query or caller; start again without it"
Cursor = tuple[datetime, str]


class PageTokens:
    """The cursor travels in the token, the scope (caller and query) only in its HMAC: a token altered, or
    replayed by another caller or with another query, fails. The key is derived from the JWT secret with a
    label, so the secret itself signs nothing but tokens."""

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"mediadl auth page-token v1", hashlib.sha256).digest()

    def _mac(self, scope: str, payload: bytes) -> bytes:
        return hmac.new(self._key, scope.encode() + b"\x00" + payload, hashlib.sha256).digest()

    def encode(self, scope: str, cursor: Cursor) -> str:
        micros = (cursor[0] - _EPOCH) // timedelta(microseconds=1)
        payload = json.dumps([micros, cursor[1]], separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(scope, payload))}"

    def decode(self, token: str, scope: str) -> Cursor | None:
        """The cursor of `token`, None for "" (the first page); InvalidArgument on page_token otherwise."""
        if not token:
            return None
        try:
            encoded_payload, _, encoded_mac = token.partition(".")
            payload, mac = _unb64(encoded_payload), _unb64(encoded_mac)
        except (ValueError, binascii.Error):
            raise InvalidArgument.field("page_token", _BAD_TOKEN) from None
        if not hmac.compare_digest(mac, self._mac(scope, payload)):
            raise InvalidArgument.field("page_token", _BAD_TOKEN)
        micros, ident = json.loads(payload)
        return _EPOCH + timedelta(microseconds=int(micros)), str(ident)


def page_size(requested: int) -> int:
    """Default 20, larger than 100 clamped; negative is INVALID_ARGUMENT."""
    check = Validator()
    check.check(requested >= 0, "page_size", f"must not be negative (0 means {DEFAULT_PAGE_SIZE})")
    check.raise_if_any()
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def scope_of(method: str, caller_id: str, *filters: object) -> str:
    return json.dumps([method, caller_id, *filters], separators=(",", ":"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("empty or non-ASCII token part")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
