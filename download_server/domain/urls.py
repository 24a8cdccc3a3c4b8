"""What the server accepts as a URL to fetch, shared by the use cases' validation and the engine's URL policy."""

from __future__ import annotations

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})


class UrlRefused(Exception):
    """A URL the server will not fetch; the message names the reason and is safe to show the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
