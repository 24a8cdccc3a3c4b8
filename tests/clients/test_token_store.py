"""FileTokenStore: 0600 from the first byte, atomic replacement, clear errors, a lock that excludes others."""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from pathlib import Path

import pytest

from clients import FileTokenStore, MemoryTokenStore, Tokens, TokenStoreError

PAIR = Tokens(access_token="a.b.c", refresh_token="d.e.f", expires_at=1234.5)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_saved_file_is_private_and_round_trips(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "cfg" / "tokens.json")
    old_umask = os.umask(0o022)  # a typical umask would leave a plain file world-readable
    try:
        store.save(PAIR)
    finally:
        os.umask(old_umask)
    assert mode(store.path) == 0o600
    assert mode(store.path.parent) == 0o700
    assert store.load() == PAIR
    assert os.listdir(store.path.parent) == ["tokens.json"]  # no temporary file left behind


def test_save_replaces_atomically_a_file_of_other_mode(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text("{}")
    path.chmod(0o644)
    FileTokenStore(path).save(PAIR)
    assert mode(path) == 0o600
    assert FileTokenStore(path).load() == PAIR


def test_missing_file_means_logged_out_and_clear_is_idempotent(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    assert store.load() is None
    store.save(PAIR)
    store.clear()
    store.clear()
    assert store.load() is None


@pytest.mark.parametrize(
    "content",
    ["not json", "[]", '{"access_token": "x"}', '{"access_token": 1, "refresh_token": {}, "expires_at": "soon"}'],
)
def test_corrupt_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(TokenStoreError, match="not a mediadl token file"):
        FileTokenStore(path).load()


def test_repr_never_shows_tokens() -> None:
    assert "a.b.c" not in repr(PAIR) and "d.e.f" not in repr(PAIR)


def test_exclusive_excludes_another_holder(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    lock_path = tmp_path / "tokens.json.lock"
    results: list[bool] = []

    def try_lock() -> None:
        # A separate open file description, as another process would have.
        fd = os.open(lock_path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            results.append(True)
        except BlockingIOError:
            results.append(False)
        finally:
            os.close(fd)

    with store.exclusive():
        thread = threading.Thread(target=try_lock)
        thread.start()
        thread.join()
    try_lock()
    assert results == [False, True]
    assert mode(lock_path) == 0o600


def test_memory_store() -> None:
    store = MemoryTokenStore()
    assert store.load() is None
    store.save(PAIR)
    assert store.load() == PAIR
    with store.exclusive():
        store.clear()
    assert store.load() is None


def test_unusable_directory_is_a_clear_error(tmp_path: Path) -> None:
    # A file where the config directory should be: fails even for root, unlike permission bits.
    (tmp_path / "cfg").write_text("not a directory")
    store = FileTokenStore(tmp_path / "cfg" / "tokens.json")
    with pytest.raises(TokenStoreError, match="cannot create"):
        store.save(PAIR)
    with pytest.raises(TokenStoreError, match="cannot read"):
        store.load()
