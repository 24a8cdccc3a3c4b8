"""The verified-token cache: hits skip the signature check, but expiry and key removal still apply."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path

import jwt
import pytest

from auth_server.adapters.tokens import JwtIssuer
from mediadl_common import tokens
from mediadl_common.config import JwtSettings
from mediadl_common.errors import CREDENTIALS_EXPIRED, Unauthenticated
from mediadl_common.keys import PublicKey, VerificationKeys, generate_ed25519_pem, load_signing_keys
from mediadl_common.tokens import TokenVerifier, UnknownKeyId

SETTINGS = JwtSettings(secret_key="c" * 40)


@pytest.fixture
def decode_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: object, **kwargs: object) -> object:
        calls.append(token)
        return real(token, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jwt, "decode", counting)
    return calls


async def test_a_verified_token_is_not_checked_again(decode_calls: list[str]) -> None:
    verifier = TokenVerifier(SETTINGS)
    token, claims = JwtIssuer(SETTINGS).issue(sub="u1", type="access", ttl_seconds=60)
    assert [await verifier.verify(token, "access") for _ in range(5)] == [claims] * 5
    assert decode_calls == [token]
    # The expected type is part of the key: the same token as a refresh token is checked (and refused).
    with pytest.raises(Unauthenticated):
        await verifier.verify(token, "refresh")


async def test_a_cached_token_still_expires() -> None:
    issued_at = time.time()
    # exp = int(issued_at - 58) + 60: between one and two seconds from now (iat is truncated to seconds).
    issuer = JwtIssuer(SETTINGS, clock=lambda: issued_at - 58)
    verifier = TokenVerifier(SETTINGS)
    token, claims = issuer.issue(sub="u1", type="access", ttl_seconds=60)
    assert (await verifier.verify(token, "access")).sub == "u1"
    await asyncio.sleep(max(0.0, claims.exp - time.time()) + 0.1)
    with pytest.raises(Unauthenticated) as info:
        await verifier.verify(token, "access")
    assert info.value.reason == CREDENTIALS_EXPIRED


async def test_a_cached_token_of_a_removed_key_is_refused(tmp_path: Path) -> None:
    pem = tmp_path / "k.pem"
    pem.write_bytes(generate_ed25519_pem())
    [key] = load_signing_keys(pem, "EdDSA")
    published: dict[str, PublicKey] = {key.kid: key.public_key}

    async def fetch() -> Mapping[str, PublicKey]:
        return dict(published)

    settings = JwtSettings(secret_key="c" * 40, algorithm="EdDSA")
    keys = VerificationKeys(published, fetch)
    verifier = TokenVerifier(settings, keys)
    token, _ = JwtIssuer(settings, signing_key=key).issue(sub="u1", type="access", ttl_seconds=600)
    assert (await verifier.verify(token, "access")).sub == "u1"
    published.clear()  # the key is retired and the verifier's next (periodic) refresh drops it
    assert await keys.refresh()
    with pytest.raises(UnknownKeyId):
        await verifier.verify(token, "access")


async def test_the_cache_is_bounded(decode_calls: list[str]) -> None:
    assert tokens.VERIFIED_CACHE_SIZE == 10_000  # the default: enough for every active session
    issuer = JwtIssuer(SETTINGS)
    verifier = TokenVerifier(SETTINGS, cache_size=3)
    issued = [issuer.issue(sub=f"u{i}", type="access", ttl_seconds=60)[0] for i in range(10)]
    for token in issued:
        await verifier.verify(token, "access")
    assert len(verifier._cache) == 3
    decode_calls.clear()
    for token in issued[-3:]:  # the three most recent are still remembered...
        await verifier.verify(token, "access")
    assert decode_calls == []
    await verifier.verify(issued[0], "access")  # ...the oldest was evicted and is checked again
    assert decode_calls == [issued[0]]
