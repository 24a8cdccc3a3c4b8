"""ListUsers' page sizes and token label; the signed tokens themselves are mediadl_common/page_tokens.py."""

from __future__ import annotations

from mediadl_common.errors import Validator
from mediadl_common.page_tokens import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

# The HMAC key's label: the auth server's tokens mean nothing to the download server's lists, and back.
TOKEN_LABEL = b"mediadl auth page-token v1"


def page_size(requested: int) -> int:
    """Default 20, larger than 100 clamped; negative is INVALID_ARGUMENT."""
    check = Validator()
    check.check(requested >= 0, "page_size", f"must not be negative (0 means {DEFAULT_PAGE_SIZE})")
    check.raise_if_any()
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
