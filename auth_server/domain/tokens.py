"""Refresh-token records (one row per issued refresh token, grouped by login family) and what a login returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from auth_server.domain.users import User

TOKEN_TYPE = "Bearer"


@dataclass(frozen=True)
class RefreshTokenRecord:
    """What the server remembers of a refresh token: its id (jti), never the token itself.

    A token is live while neither `used_at` (rotated away) nor `revoked_at` (logout, theft, password
    change) is set. Every token descended from one login shares `family_id`.
    """

    jti: str
    user_id: str
    family_id: str
    expires_at: datetime
    create_time: datetime
    used_at: datetime | None = None
    replaced_by: str | None = None
    revoked_at: datetime | None = None

    @property
    def is_live(self) -> bool:
        return self.used_at is None and self.revoked_at is None


@dataclass(frozen=True)
class TokenLifetimes:
    access_seconds: int
    refresh_seconds: int


@dataclass(frozen=True)
class TokenPair:
    """The answer to Login and RefreshToken."""

    access_token: str
    refresh_token: str
    expires_in: int
    user: User
    token_type: str = TOKEN_TYPE


@dataclass(frozen=True)
class Jwk:
    """One public key of the JWKS (EdDSA: crv and x; RS256: n and e). HMAC deployments publish none."""

    kty: str
    kid: str
    alg: str
    use: str = "sig"
    crv: str = ""
    x: str = ""
    n: str = ""
    e: str = ""
