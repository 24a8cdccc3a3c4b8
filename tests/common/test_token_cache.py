"""The verified-token cache: hits skip the signature check, but expiry and key removal still apply."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import jwt
import pytest

from mediadl_common import tokens
from mediadl_common.config import JwtSettings
from mediadl_common.errors import CREDENTIALS_EXPIRED
from mediadl_common.keys import PublicKey, VerificationKeys, generate_ed25519_pem, load_signing_keys
from mediadl_common.tokens import JwtCodec, TokenError, UnknownKeyId

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


def test_a_verified_token_is_not_checked_again(decode_calls: list[str]) -> None:
    codec = JwtCodec(SETTINGS)
    token, claims = codec.issue(sub="u1", type="access", ttl_seconds=60)
    assert [codec.verify(token, "access") for _ in range(5)] == [claims] * 5
    assert decode_calls == [token]
    # The expected type is part of the key: the same token as a refresh token is checked (and refused).
    with pytest.raises(TokenError):
        codec.verify(token, "refresh")


def test_a_cached_token_still_expires() -> None:
    issued_at = time.time()
    # exp = int(issued_at - 58) + 60: between one and two seconds from now (iat is truncated to seconds).
    codec = JwtCodec(SETTINGS, clock=lambda: issued_at - 58)
    token, claims = codec.issue(sub="u1", type="access", ttl_seconds=60)
    assert codec.verify(token, "access").sub == "u1"
    time.sleep(max(0.0, claims.exp - time.time()) + 0.1)
    with pytest.raises(TokenError) as info:
        codec.verify(token, "access")
    assert info.value.reason == CREDENTIALS_EXPIRED


async def test_a_cached_token_of_a_removed_key_is_refused(tmp_path: Path) -> None:
    pem = tmp_path / "k.pem"
    pem.write_bytes(generate_ed25519_pem())
    [key] = load_signing_keys(pem, "EdDSA")
    published: dict[str, PublicKey] = {key.kid: key.public_key}

    async def fetch() -> Mapping[str, PublicKey]:
        return dict(published)

    settings = JwtSettings(secret_key="c" * 40, algorithm="EdDSA")
    verifier = JwtCodec(settings, verification_keys=VerificationKeys(published, fetch))
    token, _ = JwtCodec(settings, signing_key=key).issue(sub="u1", type="access", ttl_seconds=600)
    assert verifier.verify(token, "access").sub == "u1"
    published.clear()  # the key is retired and the verifier's next refresh drops it
    assert verifier.verification_keys is not None and await verifier.verification_keys.refresh()
    with pytest.raises(UnknownKeyId):
        verifier.verify(token, "access")


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_CACHE_SIZE", 3)
    codec = JwtCodec(SETTINGS)
    for i in range(10):
        codec.verify(codec.issue(sub=f"u{i}", type="access", ttl_seconds=60)[0], "access")
    assert len(codec._verified) == 3
