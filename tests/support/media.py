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


def ffprobe(media: Path, *options: str) -> str:
    """What `ffprobe -v error OPTIONS MEDIA` prints; the test fails, naming the file, when ffprobe cannot read
    it. Skips the calling test when ffprobe is not installed (CI installs it, and forbids the skip)."""
    command = shutil.which("ffprobe")
    if command is None:
        pytest.skip("ffprobe not installed: the playback check needs ffmpeg")
    result = subprocess.run(
        [command, "-v", "error", *options, str(media)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"ffprobe could not read {media}: {result.stderr}"
    return result.stdout


def decoded_video_frames(media: Path) -> int:
    """Decode every video frame of `media` (a file or a local playlist) with ffprobe and count them."""
    out = ffprobe(media, "-select_streams", "v:0", "-count_frames", "-show_entries", "stream=nb_read_frames",
                  "-of", "csv=p=0")  # fmt: skip
    return int(out.split()[0].strip(","))  # HLS shows the stream once per program: take the first


def encrypt(plain: bytes, key: bytes, iv: bytes) -> bytes:
    """AES-128-CBC with PKCS7 padding, as an HLS packager encrypts a segment."""
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
