"""Where a client keeps its token pair: in memory (default) or in a 0600 JSON file (the CLI).

A store is tiny and synchronous on purpose: it is read before each call and written after each login or
refresh. Implement :class:`TokenStore` to keep tokens elsewhere (a keyring, a secrets manager).

>>> store = MemoryTokenStore()
>>> store.load() is None
True
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol


class TokenStoreError(Exception):
    """The stored tokens could not be read or written (bad file, bad permissions)."""


@dataclass(frozen=True)
class Tokens:
    """An access/refresh token pair. ``repr()`` never shows the tokens."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    token_type: str = "Bearer"
    # Unix time the access token expires, as the server announced it; informative only.
    expires_at: float | None = None


class TokenStore(Protocol):
    """Keeps one token pair. ``exclusive()`` guards a refresh against other users of the same store."""

    def load(self) -> Tokens | None: ...

    def save(self, tokens: Tokens) -> None: ...

    def clear(self) -> None: ...

    def exclusive(self) -> AbstractContextManager[None]:
        """Held (from a worker thread) while refreshing; blocking is allowed. In-process users need nothing."""
        ...


class MemoryTokenStore:
    """Tokens kept in this process only; gone when it exits.

    >>> client = await connect("127.0.0.1:50051", "127.0.0.1:50052", tokens=MemoryTokenStore())  # doctest: +SKIP
    """

    def __init__(self, tokens: Tokens | None = None) -> None:
        self._tokens = tokens

    def load(self) -> Tokens | None:
        return self._tokens

    def save(self, tokens: Tokens) -> None:
        self._tokens = tokens

    def clear(self) -> None:
        self._tokens = None

    def exclusive(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()


class FileTokenStore:
    """Tokens in a JSON file created with mode 0600 (atomically: never briefly readable by others).

    Several processes may share the file (two terminals running the CLI): ``exclusive()`` takes an
    advisory lock on ``<file>.lock`` so only one of them rotates the refresh token at a time.

    >>> store = FileTokenStore(Path("~/.config/mediadl/tokens.json").expanduser())  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> Tokens | None:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TokenStoreError(f"cannot read {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(raw)
            return Tokens(
                access_token=str(data["access_token"]),
                refresh_token=str(data["refresh_token"]),
                token_type=str(data.get("token_type", "Bearer")),
                expires_at=float(data["expires_at"]) if data.get("expires_at") is not None else None,
            )
        except (ValueError, KeyError, TypeError):
            raise TokenStoreError(f"{self.path} is not a mediadl token file (log in again)") from None

    def save(self, tokens: Tokens) -> None:
        self._ensure_dir()
        payload = json.dumps(asdict(tokens), indent=2).encode()
        # mkstemp creates the file 0600; os.replace swaps it in atomically, so no reader sees half a file.
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tokens-", suffix=".tmp", dir=self.path.parent)
        except OSError as exc:
            raise TokenStoreError(f"cannot write tokens in {self.path.parent}: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise TokenStoreError(f"cannot write {self.path}: {exc.strerror}") from None
            raise

    def clear(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise TokenStoreError(f"cannot remove {self.path}: {exc.strerror}") from None

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        self._ensure_dir()
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _ensure_dir(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise TokenStoreError(f"cannot create {self.path.parent}: {exc.strerror}") from None
