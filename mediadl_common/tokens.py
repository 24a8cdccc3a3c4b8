"""JWT issuing and verification shared by both servers: one place that knows the claims and the checks."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from mediadl_common.config import JwtSettings
from mediadl_common.errors import CREDENTIALS_EXPIRED, CREDENTIALS_INVALID
from mediadl_common.keys import PublicKey, SigningKey, VerificationKeys

TokenType = Literal["access", "refresh"]
REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud", "type"]
# Verified tokens remembered per codec (a few hundred bytes each): enough for every active session.
VERIFIED_CACHE_SIZE = 10_000
# Headers that would let a token bring its own key or point us at one: never honoured, always refused.
_KEY_BEARING_HEADERS = ("jwk", "jku", "x5u", "x5c")


class TokenError(Exception):
    """A token was refused; `reason` is CREDENTIALS_INVALID or CREDENTIALS_EXPIRED. Never holds the token."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class UnknownKeyId(TokenError):
    """The token names a kid we do not trust (yet): the caller may refresh the keys and try once more."""

    def __init__(self, kid: str) -> None:
        super().__init__(CREDENTIALS_INVALID, "token signed with an unknown key")
        self.kid = kid


@dataclass(frozen=True)
class Claims:
    sub: str
    type: TokenType
    jti: str
    iat: int
    exp: int
    # Refresh tokens carry the id of the login they descend from ("fam"), for reuse detection.
    family: str | None = None


class JwtCodec:
    """Signs and verifies mediadl tokens with a pinned algorithm, issuer and audience.

    HS* uses the shared secret. EdDSA/RS256 sign with `signing_key` (auth server only) and verify
    against `verification_keys`, looked up by the token's kid.
    """

    def __init__(
        self,
        settings: JwtSettings,
        clock: Callable[[], float] = time.time,
        *,
        signing_key: SigningKey | None = None,
        verification_keys: VerificationKeys | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._signing_key = signing_key
        self.verification_keys = verification_keys
        # (token, expected type) -> (claims, kid): tokens whose signature and claims already passed.
        self._verified: OrderedDict[tuple[str, TokenType], tuple[Claims, str | None]] = OrderedDict()

    def issue(self, *, sub: str, type: TokenType, ttl_seconds: int, family: str | None = None) -> tuple[str, Claims]:
        now = int(self._clock())
        claims = Claims(sub=sub, type=type, jti=uuid.uuid4().hex, iat=now, exp=now + ttl_seconds, family=family)
        payload: dict[str, Any] = {
            "sub": claims.sub,
            "type": claims.type,
            "jti": claims.jti,
            "iat": claims.iat,
            "exp": claims.exp,
            "iss": self._settings.issuer,
            "aud": self._settings.audience,
        }
        if family is not None:
            payload["fam"] = family
        if not self._settings.asymmetric:
            token = jwt.encode(payload, self._settings.secret_key, algorithm=self._settings.algorithm)
            return token, claims
        if self._signing_key is None:
            raise RuntimeError("this codec has no private key: only the auth server issues tokens")
        token = jwt.encode(
            payload,
            self._signing_key.private_key,
            algorithm=self._settings.algorithm,
            headers={"kid": self._signing_key.kid},
        )
        return token, claims

    def _key_for(self, token: str) -> tuple[str | PublicKey, str | None]:
        """The key to check `token` with, and the kid that named it (None with a shared secret)."""
        if not self._settings.asymmetric:
            return self._settings.secret_key, None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError(CREDENTIALS_INVALID, "malformed token") from None
        if any(name in header for name in _KEY_BEARING_HEADERS):
            raise TokenError(CREDENTIALS_INVALID, "token carries its own key reference")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError(CREDENTIALS_INVALID, "token has no key id")
        key = self.verification_keys.get(kid) if self.verification_keys is not None else None
        if key is None:
            raise UnknownKeyId(kid)
        return key, kid

    def verify(self, token: str, expected: TokenType) -> Claims:
        """Return the claims of a valid token of the expected type, or raise TokenError.

        A token verified before is answered from a bounded cache: checking a signature costs more than the
        rest of a small RPC. A hit still honours expiry, and with public keys, that its key is still trusted.
        """
        if not token:
            raise TokenError(CREDENTIALS_INVALID, "empty token")
        cached = self._verified.get((token, expected))
        if cached is not None:
            claims, kid = cached
            keys = self.verification_keys
            still_trusted = kid is None or (keys is not None and keys.get(kid) is not None)
            if claims.exp > time.time() and still_trusted:
                self._verified.move_to_end((token, expected))
                return claims
            del self._verified[(token, expected)]
        key, kid = self._key_for(token)
        claims = self._verify_signed(token, expected, key)
        self._verified[(token, expected)] = (claims, kid)
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def _verify_signed(self, token: str, expected: TokenType, key: str | PublicKey) -> Claims:
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[self._settings.algorithm],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                # PyJWT checks exp/iat against the real clock; our clock only drives issuing.
                options={"require": REQUIRED_CLAIMS, "verify_iat": True},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError(CREDENTIALS_EXPIRED, "token expired") from None
        except jwt.InvalidAudienceError:
            raise TokenError(CREDENTIALS_INVALID, "token has the wrong audience") from None
        except jwt.InvalidIssuerError:
            raise TokenError(CREDENTIALS_INVALID, "token has the wrong issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(CREDENTIALS_INVALID, f"token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidAlgorithmError:
            raise TokenError(CREDENTIALS_INVALID, "token signed with a refused algorithm") from None
        except jwt.InvalidSignatureError:
            raise TokenError(CREDENTIALS_INVALID, "bad token signature") from None
        except jwt.ImmatureSignatureError:
            raise TokenError(CREDENTIALS_INVALID, "token not valid yet") from None
        except jwt.PyJWTError:
            raise TokenError(CREDENTIALS_INVALID, "malformed token") from None
        if payload.get("type") != expected:
            raise TokenError(
                CREDENTIALS_INVALID, f"not an {expected} token" if expected == "access" else f"not a {expected} token"
            )
        sub, jti = payload.get("sub"), payload.get("jti")
        if not isinstance(sub, str) or not sub:
            raise TokenError(CREDENTIALS_INVALID, "token has no subject")
        if not isinstance(jti, str) or not jti:
            raise TokenError(CREDENTIALS_INVALID, "token has no id")
        family = payload.get("fam")
        return Claims(
            sub=sub,
            type=expected,
            jti=jti,
            iat=int(payload["iat"]),
            exp=int(payload["exp"]),
            family=family if isinstance(family, str) else None,
        )
