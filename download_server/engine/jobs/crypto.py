"""AES-128-CBC segment decryption with PKCS7 padding (HLS EXT-X-KEY METHOD=AES-128), streamed chunk by chunk."""

from __future__ import annotations

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 16


def iv_for_sequence(media_sequence: int) -> bytes:
    """The IV HLS implies when EXT-X-KEY has none: the media sequence number, 128-bit big-endian."""
    return media_sequence.to_bytes(16, "big")


def parse_iv(text: str) -> bytes:
    """An IV attribute (`0x` + 32 hex digits) as 16 bytes; ValueError otherwise."""
    digits = text[2:] if text[:2].lower() == "0x" else text
    iv = bytes.fromhex(digits)
    if len(iv) != 16:
        raise ValueError(f"an AES-128 IV has 16 bytes, this one {len(iv)}")
    return iv


class Aes128CbcDecryptor:
    """Decrypts a stream of any chunking; finalize() checks and strips the PKCS7 padding.

    Memory is one block plus the current chunk: a 1 GiB segment decrypts in constant memory.
    """

    def __init__(self, key: bytes, iv: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"an AES-128 key has 16 bytes, this one {len(key)}")
        if len(iv) != 16:
            raise ValueError(f"an AES-128 IV has 16 bytes, this one {len(iv)}")
        self._decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        self._unpadder = padding.PKCS7(128).unpadder()
        self._received = 0

    def update(self, data: bytes) -> bytes:
        self._received += len(data)
        return self._unpadder.update(self._decryptor.update(data))

    def finalize(self) -> bytes:
        """The last plaintext bytes; ValueError if the ciphertext was not whole blocks or the padding is wrong."""
        if self._received == 0 or self._received % 16:
            raise ValueError(f"ciphertext of {self._received} bytes is not a whole number of AES blocks")
        tail = self._unpadder.update(self._decryptor.finalize())
        try:
            return tail + self._unpadder.finalize()
        except ValueError:
            raise ValueError("bad PKCS7 padding (wrong key or IV?)") from None
