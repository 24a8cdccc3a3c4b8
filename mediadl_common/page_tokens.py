"""Opaque, tamper-evident page tokens for both servers' List RPCs: a keyset cursor bound to caller and query.

A token is the cursor (a time and an id) plus an HMAC-SHA256 over the cursor *and* the query's scope
(method, caller, filters, order). The scope is not in the token, only in the MAC: a token altered, or
replayed by another caller or with other filters, fails verification. The key is derived from the JWT
secret with a label of the server's own, so the secret itself never signs anything but tokens, and one
server's tokens mean nothing to the other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

from mediadl_common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_BAD_TOKEN = "is invalid, was altered, or belongs to another query or caller; start again without it"


class PageTokens:
    def __init__(self, secret: str, label: bytes) -> None:
        self._key = hmac.new(secret.encode(), label, hashlib.sha256).digest()

    def _mac(self, scope: str, payload: bytes) -> bytes:
        return hmac.new(self._key, scope.encode() + b"\x00" + payload, hashlib.sha256).digest()

    def encode(self, scope: str, time: datetime, ident: str) -> str:
        """The token of the page after the row at (`time`, `ident`) in the query `scope`."""
        micros = (time - _EPOCH) // _MICROSECOND
        payload = json.dumps([micros, ident], separators=(",", ":")).encode()
        return f"{_b64(payload)}.{_b64(self._mac(scope, payload))}"

    def decode(self, token: str, scope: str) -> tuple[datetime, str] | None:
        """The (time, id) a token carries, None for "" (the first page); InvalidArgument on page_token otherwise."""
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


def scope_of(method: str, caller_id: str, *filters: object) -> str:
    """The canonical description of a query a token may continue."""
    return json.dumps([method, caller_id, *filters], separators=(",", ":"), sort_keys=True)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("empty or non-ASCII token part")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
