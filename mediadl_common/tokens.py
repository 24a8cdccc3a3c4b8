"""Token claims and their verification, shared by both servers: one place that knows the claims and the checks."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from mediadl_common.config import JwtSettings
from mediadl_common.errors import CREDENTIALS_EXPIRED, CREDENTIALS_INVALID, CREDENTIALS_REVOKED, Unauthenticated
from mediadl_common.keys import PublicKey, VerificationKeys
from mediadl_common.revocations import RevocationList

TokenType = Literal["access", "refresh"]
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud", "type"]
# Verified tokens remembered per verifier (a few hundred bytes each): enough for every active session.
VERIFIED_CACHE_SIZE = 10_000
# Headers that would let a token bring its own key or point us at one: never honoured, always refused.
_KEY_BEARING_HEADERS = ("jwk", "jku", "x5u", "x5c")
# PyJWT's refusals and what the caller is told; expiry (CREDENTIALS_EXPIRED) and a missing claim (named in the
# message) are handled before this table, and any other PyJWTError is a malformed token.
_REFUSALS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.InvalidAudienceError, "token has the wrong audience"),
    (jwt.InvalidIssuerError, "token has the wrong issuer"),
    (jwt.InvalidAlgorithmError, "token signed with a refused algorithm"),
    (jwt.InvalidSignatureError, "bad token signature"),
    (jwt.ImmatureSignatureError, "token not valid yet"),
)


def _invalid(message: str) -> Unauthenticated:
    return Unauthenticated(message, reason=CREDENTIALS_INVALID)


class UnknownKeyId(Unauthenticated):
    """The token names a kid we do not trust, even after asking the key source (rate-limited) once more."""

    def __init__(self, kid: str) -> None:
        super().__init__("token signed with an unknown key", reason=CREDENTIALS_INVALID)
        self.kid = kid


@dataclass(frozen=True)
class Claims:
    sub: str
    type: TokenType
    jti: str
    # Sub-second (microseconds): a token issued after a revocation works even within the same second.
    iat: float
    exp: int
    # Refresh tokens carry the id of the login they descend from ("fam"), for reuse detection.
    family: str | None = None


def encode_claims(claims: Claims, settings: JwtSettings) -> dict[str, Any]:
    """The JWT payload for `claims`, as the issuer signs it and `TokenVerifier` expects it."""
    payload: dict[str, Any] = {
        "sub": claims.sub,
        "type": claims.type,
        "jti": claims.jti,
        "iat": claims.iat,
        "exp": claims.exp,
        "iss": settings.issuer,
        "aud": settings.audience,
    }
    if claims.family is not None:
        payload["fam"] = claims.family
    return payload


class _VerifiedCache:
    """(token, expected type) -> (claims, kid) of tokens whose signature and claims already passed; LRU-bounded."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, TokenType], tuple[Claims, str | None]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, TokenType]) -> tuple[Claims, str | None] | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple[str, TokenType], claims: Claims, kid: str | None) -> None:
        self._entries[key] = (claims, kid)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def drop(self, key: tuple[str, TokenType]) -> None:
        self._entries.pop(key, None)


class TokenVerifier:
    """Checks mediadl tokens with a pinned algorithm, issuer and audience; it cannot issue any.

    HS* checks with the shared secret. EdDSA/RS256 check against `keys`, looked up by the token's kid; a kid
    not known yet makes the key set ask its source again (rate-limited by VerificationKeys), so a key
    rotation needs no restart and a flood of forged kids cannot hammer the source.
    """

    def __init__(
        self,
        settings: JwtSettings,
        keys: VerificationKeys | None = None,
        *,
        cache_size: int = VERIFIED_CACHE_SIZE,
        revocations: RevocationList | None = None,
    ) -> None:
        if settings.asymmetric and keys is None:
            raise ValueError(f"JWT_ALGORITHM={settings.algorithm} needs public keys to verify with")
        self._settings = settings
        self._keys = keys if settings.asymmetric else None
        self._cache = _VerifiedCache(cache_size)
        self.revocations = revocations

    async def verify(self, token: str, expected: TokenType = "access") -> Claims:
        """The claims of a valid token of the expected type; raises Unauthenticated (reason CREDENTIALS_INVALID
        or CREDENTIALS_EXPIRED) otherwise.

        A token verified before is answered from a bounded cache: checking a signature costs more than the rest
        of a small RPC. A hit still honours expiry and, with public keys, that its key is still trusted.
        """
        if not token:
            raise _invalid("empty token")
        claims = self._cached(token, expected)
        if claims is None:
            key, kid = await self._key_for(token)
            claims = _claims_from(_decode(token, key, self._settings), expected)
            self._cache.put((token, expected), claims, kid)
        # Checked on every call, cached or not: a revocation must apply to tokens verified before it.
        if expected == "access" and self.revocations is not None and self.revocations.revoked(claims.sub, claims.iat):
            raise Unauthenticated("token revoked: log in again", reason=CREDENTIALS_REVOKED)
        return claims

    def _cached(self, token: str, expected: TokenType) -> Claims | None:
        entry = self._cache.get((token, expected))
        if entry is None:
            return None
        claims, kid = entry
        still_trusted = kid is None or (self._keys is not None and self._keys.get(kid) is not None)
        if claims.exp > time.time() and still_trusted:
            return claims
        self._cache.drop((token, expected))
        return None

    async def _key_for(self, token: str) -> tuple[str | PublicKey, str | None]:
        """The key to check `token` with, and the kid that named it (None with a shared secret)."""
        if self._keys is None:
            return self._settings.secret_key, None
        kid = _trusted_kid(token)
        key = self._keys.get(kid)
        # Maybe the issuer rotated keys: ask the source (rate-limited) and look exactly once more.
        if key is None and await self._keys.refresh_for_unknown(kid):
            key = self._keys.get(kid)
        if key is None:
            raise UnknownKeyId(kid)
        return key, kid


def _trusted_kid(token: str) -> str:
    """The kid of the token's header, refusing headers that bring or point at a key of their own."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise _invalid("malformed token") from None
    if any(name in header for name in _KEY_BEARING_HEADERS):
        raise _invalid("token carries its own key reference")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise _invalid("token has no key id")
    return kid


def _decode(token: str, key: str | PublicKey, settings: JwtSettings) -> dict[str, Any]:
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[settings.algorithm],
            audience=settings.audience,
            issuer=settings.issuer,
            # PyJWT checks exp/iat against the real clock; the issuer's clock only drives issuing.
            options={"require": REQUIRED_CLAIMS, "verify_iat": True},
        )
    except jwt.PyJWTError as exc:
        raise _refusal(exc) from None
    return payload


def _refusal(exc: jwt.PyJWTError) -> Unauthenticated:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return Unauthenticated("token expired", reason=CREDENTIALS_EXPIRED)
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return _invalid(f"token lacks the {exc.claim!r} claim")
    message = next((text for kind, text in _REFUSALS if isinstance(exc, kind)), "malformed token")
    return _invalid(message)


def _claims_from(payload: dict[str, Any], expected: TokenType) -> Claims:
    if payload.get("type") != expected:
        raise _invalid(f"not an {expected} token" if expected == "access" else f"not a {expected} token")
    sub, jti = payload.get("sub"), payload.get("jti")
    if not isinstance(sub, str) or not sub:
        raise _invalid("token has no subject")
    if not isinstance(jti, str) or not jti:
        raise _invalid("token has no id")
    family = payload.get("fam")
    return Claims(
        sub=sub,
        type=expected,
        jti=jti,
        iat=float(payload["iat"]),
        exp=int(payload["exp"]),
        family=family if isinstance(family, str) else None,
    )
