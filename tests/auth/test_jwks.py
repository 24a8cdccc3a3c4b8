"""EdDSA/RS256 mode: the auth server signs with the newest key of JWT_PRIVATE_KEY_FILE and GetJwks publishes
every public key, enough for a verifier (the download server) to check tokens on its own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf.json_format import MessageToDict

from auth_server.config import AuthSettings
from mediadl.auth.v1 import auth_pb2
from mediadl_common.config import ConfigError, Env, JwtSettings
from mediadl_common.keys import VerificationKeys, generate_ed25519_pem, parse_jwks
from mediadl_common.tokens import TokenVerifier
from tests.auth.helpers import SECRET, auth_settings, bearer, failure, running_auth_server


def rsa_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.parametrize(
    ("algorithm", "make_pem", "kty"), [("EdDSA", generate_ed25519_pem, "OKP"), ("RS256", rsa_pem, "RSA")]
)
async def test_tokens_verify_with_the_published_keys_alone(
    make_database_url: Callable[[str], str], tmp_path: Path, algorithm: str, make_pem: Callable[[], bytes], kty: str
) -> None:
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(make_pem() + make_pem())  # an old key, then the newest, which signs
    settings = auth_settings(make_database_url("sqlite"), JWT_ALGORITHM=algorithm, JWT_PRIVATE_KEY_FILE=str(key_file))

    async with running_auth_server(settings) as auth:
        user, session = await auth.new_session()
        jwks = await auth.stub.GetJwks(auth_pb2.GetJwksRequest())
        document = {"keys": [MessageToDict(k, preserving_proto_field_name=True) for k in jwks.keys]}
        header = jwt.get_unverified_header(session.access_token)

        assert [k.kid for k in jwks.keys] == [k.kid for k in settings.signing_keys]
        assert {(k.kty, k.alg, k.use) for k in jwks.keys} == {(kty, algorithm, "sig")}
        assert (header["alg"], header["kid"]) == (algorithm, settings.signing_keys[-1].kid)
        # A verifier holding only what GetJwks published accepts the token, as the download server will.
        verifier = TokenVerifier(
            JwtSettings(secret_key=SECRET, algorithm=algorithm), VerificationKeys(parse_jwks(document, algorithm))
        )
        assert (await verifier.verify(session.access_token, "access")).sub == user.id
        assert (await auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(session.access_token))).user == user
        rotated = await auth.stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=session.refresh_token))
        assert rotated.user == user


async def test_an_hs256_token_is_refused_in_eddsa_mode(make_database_url: Callable[[str], str], tmp_path: Path) -> None:
    key_file = tmp_path / "signing.pem"
    key_file.write_bytes(generate_ed25519_pem())
    url = make_database_url("sqlite")

    async with running_auth_server(auth_settings(url)) as hs_auth:
        _, hs_session = await hs_auth.new_session()
    async with running_auth_server(
        auth_settings(url, JWT_ALGORITHM="EdDSA", JWT_PRIVATE_KEY_FILE=str(key_file))
    ) as auth:
        error = await failure(auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(hs_session.access_token)))

    assert (error.code, error.reason) == (grpc.StatusCode.UNAUTHENTICATED, "CREDENTIALS_INVALID")


def test_eddsa_needs_a_readable_private_key_file(tmp_path: Path) -> None:
    base = {"JWT_SECRET_KEY": SECRET, "JWT_ALGORITHM": "EdDSA"}
    with pytest.raises(ConfigError, match="JWT_PRIVATE_KEY_FILE must be set"):
        AuthSettings.from_env(Env(base))
    with pytest.raises(ConfigError, match="cannot be read"):
        AuthSettings.from_env(Env({**base, "JWT_PRIVATE_KEY_FILE": str(tmp_path / "missing.pem")}))
    (tmp_path / "rsa.pem").write_bytes(rsa_pem())
    with pytest.raises(ConfigError, match="does not fit"):
        AuthSettings.from_env(Env({**base, "JWT_PRIVATE_KEY_FILE": str(tmp_path / "rsa.pem")}))
