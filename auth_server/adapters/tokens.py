"""Signing tokens with PyJWT: the auth server is the only process that issues them (verifiers cannot)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import jwt

from mediadl_common.config import JwtSettings
from mediadl_common.keys import SigningKey
from mediadl_common.tokens import Claims, TokenType, encode_claims


class JwtIssuer:
    """Signs access and refresh tokens with a pinned algorithm, issuer and audience.

    HS* signs with the shared secret. EdDSA/RS256 sign with `signing_key` and name it in the `kid` header, so
    a verifier holding only the published public keys picks the matching one.
    """

    def __init__(
        self,
        settings: JwtSettings,
        clock: Callable[[], float] = time.time,
        *,
        signing_key: SigningKey | None = None,
    ) -> None:
        if settings.asymmetric and signing_key is None:
            raise ValueError(f"JWT_ALGORITHM={settings.algorithm} needs a private key to sign with")
        self._settings = settings
        self._clock = clock
        self._signing_key = signing_key if settings.asymmetric else None

    def issue(self, *, sub: str, type: TokenType, ttl_seconds: int, family: str | None = None) -> tuple[str, Claims]:
        """A signed token and its claims; a negative `ttl_seconds` gives one that has already expired."""
        now = self._clock()
        claims = Claims(
            sub=sub, type=type, jti=uuid.uuid4().hex, iat=round(now, 6), exp=int(now) + ttl_seconds, family=family
        )
        payload = encode_claims(claims, self._settings)
        if self._signing_key is None:
            return jwt.encode(payload, self._settings.secret_key, algorithm=self._settings.algorithm), claims
        token = jwt.encode(
            payload,
            self._signing_key.private_key,
            algorithm=self._settings.algorithm,
            headers={"kid": self._signing_key.kid},
        )
        return token, claims
