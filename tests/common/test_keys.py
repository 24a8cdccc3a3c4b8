"""Asymmetric tokens: EdDSA signing with kid, JWKS, forgery attempts, rotation and the unknown-kid flood."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from auth_server.adapters.tokens import JwtIssuer
from mediadl_common.config import ConfigError, JwtSettings
from mediadl_common.errors import CREDENTIALS_INVALID, Unauthenticated
from mediadl_common.keys import (
    PublicKey,
    VerificationKeys,
    generate_ed25519_pem,
    load_jwks_file,
    load_signing_keys,
    parse_jwks,
    to_jwk,
)
from mediadl_common.tokens import TokenVerifier, UnknownKeyId

SETTINGS = JwtSettings(secret_key="p" * 40, algorithm="EdDSA")


def write_keys(path: Path, count: int) -> Path:
    path.write_bytes(b"".join(generate_ed25519_pem() for _ in range(count)))
    return path


def verifier_for(keys: Mapping[str, PublicKey], fetch=None, **kwargs) -> TokenVerifier:  # type: ignore[no-untyped-def]
    return TokenVerifier(SETTINGS, VerificationKeys(keys, fetch, **kwargs))


def public_keys_of(pem_file: Path) -> dict[str, PublicKey]:
    return {k.kid: k.public_key for k in load_signing_keys(pem_file, "EdDSA")}


async def test_eddsa_round_trip_with_kid_and_jwks(tmp_path: Path) -> None:
    pem = write_keys(tmp_path / "k.pem", 1)
    [key] = load_signing_keys(pem, "EdDSA")
    token, claims = JwtIssuer(SETTINGS, signing_key=key).issue(sub="u1", type="access", ttl_seconds=60)
    assert jwt.get_unverified_header(token)["kid"] == key.kid
    jwks = {"keys": [to_jwk(key.public_key, key.kid)]}
    assert set(jwks["keys"][0]) == {"kty", "crv", "x", "kid", "alg", "use"}
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    verifier = verifier_for(load_jwks_file(tmp_path / "jwks.json", "EdDSA"))
    assert await verifier.verify(token, "access") == claims
    assert "PRIVATE" not in repr(key) and key.kid in repr(key)


def test_a_verifier_cannot_issue_and_an_issuer_needs_a_private_key(tmp_path: Path) -> None:
    verifier = verifier_for(public_keys_of(write_keys(tmp_path / "k.pem", 1)))
    assert not hasattr(verifier, "issue") and not hasattr(TokenVerifier, "issue")
    with pytest.raises(ValueError, match="needs a private key"):
        JwtIssuer(SETTINGS)
    with pytest.raises(ValueError, match="needs public keys"):
        TokenVerifier(SETTINGS)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def hand_signed(header: dict[str, str], claims: dict[str, object], secret: bytes) -> str:
    signing_input = _b64(json.dumps(header).encode()) + b"." + _b64(json.dumps(claims).encode())
    return (signing_input + b"." + _b64(hmac.new(secret, signing_input, hashlib.sha256).digest())).decode()


def forged_tokens(real_kid: str, real_public: PublicKey) -> dict[str, str]:
    claims = {
        "sub": "victim",
        "type": "access",
        "jti": "j",
        "iat": 1,
        "exp": 4_000_000_000,
        "iss": SETTINGS.issuer,
        "aud": SETTINGS.audience,
    }
    other = ed25519.Ed25519PrivateKey.generate()
    pem_public = real_public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": real_kid}).encode())
    body = _b64(json.dumps(claims).encode())
    return {
        "other ed25519 key, real kid": jwt.encode(claims, other, algorithm="EdDSA", headers={"kid": real_kid}),
        # The classic algorithm confusion: the public key's PEM used as an HMAC secret (PyJWT refuses to
        # build it, so it is built by hand, as an attacker would).
        "hs256 with public pem": hand_signed({"alg": "HS256", "typ": "JWT", "kid": real_kid}, claims, pem_public),
        "alg none": (header + b"." + body + b".").decode(),
        "kid is a path": jwt.encode(claims, other, algorithm="EdDSA", headers={"kid": "../../../../etc/passwd"}),
        "kid is a url": jwt.encode(claims, other, algorithm="EdDSA", headers={"kid": "https://evil.example/jwks"}),
        "embedded jwk": jwt.encode(
            claims, other, algorithm="EdDSA", headers={"kid": real_kid, "jwk": to_jwk(other.public_key(), real_kid)}
        ),
        "jku header": jwt.encode(claims, other, algorithm="EdDSA", headers={"kid": real_kid, "jku": "https://e/j"}),
        "no kid": jwt.encode(claims, other, algorithm="EdDSA"),
        "rs256 key": jwt.encode(
            claims,
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            algorithm="RS256",
            headers={"kid": real_kid},
        ),
    }


@pytest.mark.parametrize("case", list(forged_tokens("k", ed25519.Ed25519PrivateKey.generate().public_key())))
async def test_forgeries_are_invalid(case: str, tmp_path: Path) -> None:
    keys = public_keys_of(write_keys(tmp_path / "k.pem", 1))
    [(kid, public)] = keys.items()
    token = forged_tokens(kid, public)[case]
    with pytest.raises(Unauthenticated) as info:
        await verifier_for(keys).verify(token, "access")
    assert info.value.reason == CREDENTIALS_INVALID


async def test_rotation_overlap_then_removal(tmp_path: Path) -> None:
    old_file = write_keys(tmp_path / "old.pem", 1)
    [old] = load_signing_keys(old_file, "EdDSA")
    old_token, _ = JwtIssuer(SETTINGS, signing_key=old).issue(sub="u", type="access", ttl_seconds=600)
    # Step 1: the new key is appended; the last key in the file signs from now on.
    both_file = tmp_path / "both.pem"
    both_file.write_bytes(old_file.read_bytes() + generate_ed25519_pem())
    keys = load_signing_keys(both_file, "EdDSA")
    assert keys[0].kid == old.kid and keys[-1].kid != old.kid
    new_token, _ = JwtIssuer(SETTINGS, signing_key=keys[-1]).issue(sub="u", type="access", ttl_seconds=600)
    overlap = verifier_for({k.kid: k.public_key for k in keys})
    assert (await overlap.verify(old_token, "access")).sub == (await overlap.verify(new_token, "access")).sub == "u"
    # Step 2: once old tokens have expired, the old key is removed: tokens it signed stop working.
    after = verifier_for({keys[-1].kid: keys[-1].public_key})
    assert (await after.verify(new_token, "access")).sub == "u"
    with pytest.raises(UnknownKeyId) as info:
        await after.verify(old_token, "access")
    assert info.value.reason == CREDENTIALS_INVALID


async def test_unknown_kid_flood_refreshes_at_most_at_the_configured_rate(tmp_path: Path) -> None:
    keys = public_keys_of(write_keys(tmp_path / "k.pem", 1))
    now = [1000.0]
    calls: list[float] = []

    async def fetch() -> Mapping[str, PublicKey]:
        calls.append(now[0])
        return keys

    verification = VerificationKeys(keys, fetch, min_refresh_interval=30, clock=lambda: now[0])
    for i in range(200):
        assert not await verification.refresh_for_unknown(f"forged-{i}")
    assert len(calls) == 1
    now[0] += 10
    assert not await verification.refresh_for_unknown("forged-x")
    assert len(calls) == 1
    now[0] += 25
    assert not await verification.refresh_for_unknown("forged-y")
    assert len(calls) == 2


async def test_the_verifier_refreshes_for_a_flood_of_forged_kids_at_the_configured_rate(tmp_path: Path) -> None:
    keys = public_keys_of(write_keys(tmp_path / "k.pem", 1))
    now = [1000.0]
    calls: list[float] = []

    async def fetch() -> Mapping[str, PublicKey]:
        calls.append(now[0])
        return keys

    verifier = verifier_for(keys, fetch, min_refresh_interval=30, clock=lambda: now[0])
    stranger = ed25519.Ed25519PrivateKey.generate()

    async def refused(kid: str) -> None:
        token = jwt.encode({"sub": "x"}, stranger, algorithm="EdDSA", headers={"kid": kid})
        with pytest.raises(UnknownKeyId) as info:
            await verifier.verify(token)
        assert (info.value.kid, info.value.reason) == (kid, CREDENTIALS_INVALID)

    for i in range(200):
        await refused(f"forged-{i}")
    assert len(calls) == 1
    now[0] += 10
    await refused("forged-x")
    assert len(calls) == 1
    now[0] += 25
    await refused("forged-y")
    assert len(calls) == 2


async def test_new_kid_is_picked_up_by_refresh(tmp_path: Path) -> None:
    first = public_keys_of(write_keys(tmp_path / "a.pem", 1))
    [new_key] = load_signing_keys(write_keys(tmp_path / "b.pem", 1), "EdDSA")
    source = {**first}
    fetched: list[int] = []

    async def fetch() -> Mapping[str, PublicKey]:
        fetched.append(len(source))
        return dict(source)

    verifier = verifier_for(first, fetch, min_refresh_interval=30)
    source[new_key.kid] = new_key.public_key
    token, _ = JwtIssuer(SETTINGS, signing_key=new_key).issue(sub="u", type="access", ttl_seconds=60)
    # The verifier asks the source itself, once, when a token names the new kid.
    assert (await verifier.verify(token, "access")).sub == "u"
    assert (await verifier.verify(token, "access")).sub == "u"
    assert fetched == [2]


def test_key_files_are_validated(tmp_path: Path) -> None:
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="no PEM private key"):
        load_signing_keys(tmp_path / "junk.pem", "EdDSA")
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "rsa.pem").write_bytes(rsa_pem)
    with pytest.raises(ConfigError, match="does not fit"):
        load_signing_keys(tmp_path / "rsa.pem", "EdDSA")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_signing_keys(tmp_path / "missing.pem", "EdDSA")
    # RS256 works the same way, with n and e in its JWK.
    [rsa_key] = load_signing_keys(tmp_path / "rsa.pem", "RS256")
    assert set(to_jwk(rsa_key.public_key, rsa_key.kid)) >= {"n", "e", "kid"}
    assert list(parse_jwks({"keys": [to_jwk(rsa_key.public_key, rsa_key.kid)]}, "RS256")) == [rsa_key.kid]
