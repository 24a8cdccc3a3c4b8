"""Media helpers for tests: hashes, AES-128 encryption like a packager, and playback through ffprobe."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decoded_video_frames(media: Path) -> int:
    """Decode every video frame of `media` (a file or a local playlist) with ffprobe and count them.

    Skips the calling test when ffprobe is not installed (CI installs it).
    """
    ffprobe = shutil.which("ffprobe")
    if ffprobe is None:
        pytest.skip("ffprobe not installed: the playback check needs ffmpeg")
    result = subprocess.run(
        [
            ffprobe,
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            str(media),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"ffprobe could not play {media}: {result.stderr}"
    return int(result.stdout.split()[0].strip(","))  # HLS shows the stream once per program: take the first


def encrypt(plain: bytes, key: bytes, iv: bytes) -> bytes:
    """AES-128-CBC with PKCS7 padding, as an HLS packager encrypts a segment."""
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
