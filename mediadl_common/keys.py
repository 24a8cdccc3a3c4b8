"""Asymmetric JWT keys: PEM signing keys named by kid, JWKS export and import, and a refreshable key set."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mediadl_common.config import ConfigError

log = logging.getLogger(__name__)

PublicKey = ed25519.Ed25519PublicKey | rsa.RSAPublicKey
PrivateKey = ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
ALGORITHM_FOR_KEY = {"OKP": "EdDSA", "RSA": "RS256"}
# Where a verifier's public keys come from again (a JWKS file, the auth server's GetJwks): kid -> key.
KeySource = Callable[[], Awaitable[Mapping[str, PublicKey]]]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


def public_jwk_fields(key: PublicKey) -> dict[str, str]:
    """The RFC 7517 members that identify a public key (no kid/alg/use)."""
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw)}
    numbers = key.public_numbers()
    return {"e": _b64url(_int_bytes(numbers.e)), "kty": "RSA", "n": _b64url(_int_bytes(numbers.n))}


def thumbprint(key: PublicKey) -> str:
    """RFC 7638 JWK thumbprint: a kid that follows from the key itself, so nobody has to invent names."""
    canonical = json.dumps(public_jwk_fields(key), separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def to_jwk(key: PublicKey, kid: str) -> dict[str, str]:
    fields = public_jwk_fields(key)
    return {**fields, "kid": kid, "alg": ALGORITHM_FOR_KEY[fields["kty"]], "use": "sig"}


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: PrivateKey
    algorithm: str

    def __repr__(self) -> str:  # key material never reaches a log line through repr()
        return f"SigningKey(kid={self.kid!r}, algorithm={self.algorithm!r})"

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()


def load_signing_keys(path: str | Path, algorithm: str) -> list[SigningKey]:
    """Read one or more PEM private keys from a file; the LAST one is the newest and signs."""
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"JWT_PRIVATE_KEY_FILE {path} cannot be read: {exc.strerror}") from None
    marker = b"-----BEGIN"
    blocks = [marker + part for part in text.split(marker)[1:]]
    keys: list[SigningKey] = []
    for number, block in enumerate(blocks, start=1):
        try:
            private = serialization.load_pem_private_key(block, password=None)
        except (ValueError, TypeError):
            raise ConfigError(
                f"JWT_PRIVATE_KEY_FILE {path}: PEM block {number} is not an unencrypted private key"
            ) from None
        expected = ed25519.Ed25519PrivateKey if algorithm == "EdDSA" else rsa.RSAPrivateKey
        if not isinstance(private, expected):
            raise ConfigError(f"JWT_PRIVATE_KEY_FILE {path}: key {number} does not fit JWT_ALGORITHM={algorithm}")
        keys.append(SigningKey(kid=thumbprint(private.public_key()), private_key=private, algorithm=algorithm))
    if not keys:
        raise ConfigError(f"JWT_PRIVATE_KEY_FILE {path} holds no PEM private key")
    return keys


def generate_ed25519_pem() -> bytes:
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def parse_jwks(document: Mapping[str, Any], algorithm: str) -> dict[str, PublicKey]:
    """Public keys by kid from a JWKS; keys for other algorithms or uses are ignored, malformed ones refused."""
    keys: dict[str, PublicKey] = {}
    for entry in document.get("keys", []):
        if not isinstance(entry, Mapping) or entry.get("use", "sig") != "sig":
            continue
        kty, kid = entry.get("kty"), entry.get("kid")
        if ALGORITHM_FOR_KEY.get(str(kty)) != algorithm or entry.get("alg", algorithm) != algorithm:
            continue
        if not isinstance(kid, str) or not kid:
            raise ValueError("a JWKS key has no kid")
        if kty == "OKP":
            if entry.get("crv") != "Ed25519":
                continue
            keys[kid] = ed25519.Ed25519PublicKey.from_public_bytes(_b64url_decode(str(entry["x"])))
        else:
            n = int.from_bytes(_b64url_decode(str(entry["n"])), "big")
            e = int.from_bytes(_b64url_decode(str(entry["e"])), "big")
            keys[kid] = rsa.RSAPublicNumbers(e, n).public_key()
    return keys


def load_jwks_file(path: str | Path, algorithm: str) -> dict[str, PublicKey]:
    try:
        document = json.loads(Path(path).read_text())
        keys = parse_jwks(document, algorithm)
    except OSError as exc:
        raise ConfigError(f"JWT_PUBLIC_KEYS_FILE {path} cannot be read: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"JWT_PUBLIC_KEYS_FILE {path} is not a valid JWKS: {exc}") from None
    if not keys:
        raise ConfigError(f"JWT_PUBLIC_KEYS_FILE {path} has no {algorithm} signing key")
    return keys


class VerificationKeys:
    """The public keys a verifier trusts, by kid, with an optional source to refresh them from.

    A token naming an unknown kid may trigger a refresh (TokenVerifier asks), at most once per
    `min_refresh_interval` seconds: a flood of forged kids cannot hammer the key source.
    """

    def __init__(
        self,
        keys: Mapping[str, PublicKey],
        fetch: KeySource | None = None,
        *,
        min_refresh_interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = dict(keys)
        self._fetch = fetch
        self._min_interval = min_refresh_interval
        self._clock = clock
        self._last_refresh: float | None = None
        self._lock = asyncio.Lock()
        self.refresh_count = 0

    def get(self, kid: str) -> PublicKey | None:
        return self._keys.get(kid)

    @property
    def kids(self) -> list[str]:
        return sorted(self._keys)

    async def refresh(self) -> bool:
        """Fetch the key set now (if there is a source); False if fetching failed."""
        self._last_refresh = self._clock()
        return await self._refresh()

    async def refresh_for_unknown(self, kid: str) -> bool:
        """Refresh because a token named `kid`; rate-limited. True if the kid is known afterwards."""
        if self._fetch is None or kid in self._keys:
            return kid in self._keys
        now = self._clock()
        # Check and record with no await in between, so concurrent unknown kids share one slot.
        if self._last_refresh is not None and now - self._last_refresh < self._min_interval:
            return False
        self._last_refresh = now
        await self._refresh()
        return kid in self._keys

    async def _refresh(self) -> bool:
        if self._fetch is None:
            return False
        async with self._lock:
            self.refresh_count += 1
            try:
                fresh = await self._fetch()
            except Exception as exc:  # the source being down must not break verification with known keys
                log.warning("refreshing verification keys failed: %s", type(exc).__name__)
                return False
            self._keys = dict(fresh)
            log.info("verification keys refreshed: %d key(s)", len(self._keys))
            return True
