"""Session use cases: login behind the brute-force throttle, refresh-token rotation with reuse detection, logout."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from auth_server.domain.ports import BlockingRunner, HashRunner, PasswordHasher, TokenIssuer, TokenVerifier, UnitOfWork
from auth_server.domain.tokens import RefreshTokenRecord, TokenLifetimes, TokenPair
from auth_server.domain.users import MAX_PASSWORD_BYTES, User, has_control_chars, normalise_email
from auth_server.services.common import OnRevoked, UnlanedHashing, ignore_revocation, require_active, utc_now
from auth_server.throttle import LoginThrottle, ThrottlePolicy
from mediadl_common.errors import CREDENTIALS_INVALID, InvalidArgument, Unauthenticated, Validator
from mediadl_common.tokens import Claims

log = logging.getLogger(__name__)

# One message for unknown email and wrong password: the answer must not tell which it was.
LOGIN_FAILED = "incorrect email or password"
REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED"


class SessionService:
    """The token use cases over ports (unit of work, hasher, issuer, verifier): no gRPC, no SQL here."""

    def __init__(
        self,
        *,
        runner: BlockingRunner,
        uow: Callable[[], UnitOfWork],
        hasher: PasswordHasher,
        issuer: TokenIssuer,
        verifier: TokenVerifier,
        lifetimes: TokenLifetimes,
        clock: Callable[[], datetime] = utc_now,
        throttle: LoginThrottle | None = None,
        hashing: HashRunner | None = None,
        on_revoked: OnRevoked = ignore_revocation,
    ) -> None:
        self._on_revoked = on_revoked
        self._run = runner.run
        self._hash = (hashing or UnlanedHashing(runner)).run_for
        self._uow = uow
        self._hasher = hasher
        self._issuer = issuer
        self._verifier = verifier
        self._lifetimes = lifetimes
        self._clock = clock
        self._throttle = throttle or LoginThrottle(ThrottlePolicy(0, 0, 0, 0))

    async def login(self, *, email: str, password: str, client: str = "") -> TokenPair:
        """`client` keys the per-client brute-force count (see throttle.py); empty means unknown."""
        email = normalise_email(email)
        check = Validator()
        if check.check(bool(email), "email", "is required"):
            check.check(not has_control_chars(email), "email", "must not contain control characters")
        check.check(bool(password), "password", "is required")
        check.check(
            len(password.encode("utf-8")) <= MAX_PASSWORD_BYTES,
            "password",
            f"must be at most {MAX_PASSWORD_BYTES} bytes",
        )
        check.raise_if_any()
        attempt = self._throttle.begin(email, client)
        try:
            pair = await self._authenticate(email, password, client)
        except Unauthenticated:
            attempt.failed()
            raise
        except BaseException:
            attempt.withdrawn()
            raise
        attempt.succeeded()
        log.info("user %s logged in", pair.user.id)
        return pair

    async def refresh(self, refresh_token: str) -> TokenPair:
        return await self._run(self._rotate, await self._verify_refresh(refresh_token))

    async def logout(self, refresh_token: str) -> None:
        await self._run(self._logout, await self._verify_refresh(refresh_token))

    async def _authenticate(self, email: str, password: str, client: str) -> TokenPair:
        user = await self._run(self._user_by_email, email)
        if not await self._hash(client, self._password_matches, user, password):
            raise Unauthenticated(LOGIN_FAILED, reason=CREDENTIALS_INVALID)
        assert user is not None  # only a real user's hash can match
        require_active(user)
        return await self._run(self._new_login, user)

    async def _verify_refresh(self, token: str) -> Claims:
        if not token:
            raise InvalidArgument.field("refresh_token", "is required")
        # A refused token raises Unauthenticated with its reason (CREDENTIALS_INVALID or CREDENTIALS_EXPIRED).
        return await self._verifier.verify(token, "refresh")

    # --- blocking parts (database and hashing thread pools) ---------------------------------------------

    def _user_by_email(self, email: str) -> User | None:
        with self._uow() as uow:
            return uow.users.get_by_email(email)

    def _password_matches(self, user: User | None, password: str) -> bool:
        if user is None:
            # As slow as a real check: an unknown email must not answer faster than a wrong password.
            self._hasher.verify_dummy(password)
            return False
        return self._hasher.verify(password, user.password_hash)

    def _new_login(self, user: User) -> TokenPair:
        with self._uow() as uow:
            pair, record = self._issue_pair(user, family_id=uuid.uuid4().hex)
            uow.refresh_tokens.add(record)
            uow.commit()
        return pair

    def _rotate(self, claims: Claims) -> TokenPair:
        now = self._clock()
        with self._uow() as uow:
            record = uow.refresh_tokens.get_for_update(claims.jti)
            user = uow.users.get(claims.sub) if _known_record(record, claims) else None
            if record is None or user is None:
                raise Unauthenticated("refresh token not recognised")
            if record.is_live:
                require_active(user)
                pair, successor = self._issue_pair(user, family_id=record.family_id)
                # Compare-and-set: of two concurrent rotations of one token, exactly one wins.
                if uow.refresh_tokens.mark_used(record.jti, used_at=now, replaced_by=successor.jti):
                    uow.refresh_tokens.add(successor)
                    uow.commit()
                    return pair
            # Rotated or revoked already: a second holder means the token was copied. Cut off the whole login.
            revoked = uow.refresh_tokens.revoke_family(record.family_id, now)
            # The thief may hold an access token of this login as well: every one issued until now is void.
            uow.users.save(replace(user, tokens_revoked_at=now))
            uow.commit()
        self._on_revoked(user.id, now)
        log.warning("reuse of a spent refresh token of user %s: revoked %d token(s) of its login", user.id, revoked)
        raise Unauthenticated(
            "refresh token already used or revoked: every token of this login is now revoked",
            reason=REFRESH_TOKEN_REUSED,
        )

    def _logout(self, claims: Claims) -> None:
        with self._uow() as uow:
            record = uow.refresh_tokens.get_for_update(claims.jti)
            if record is None or not _known_record(record, claims):
                raise Unauthenticated("refresh token not recognised")
            uow.refresh_tokens.revoke_family(record.family_id, self._clock())
            uow.commit()
        log.info("user %s logged out", record.user_id)

    def _issue_pair(self, user: User, *, family_id: str) -> tuple[TokenPair, RefreshTokenRecord]:
        access, _ = self._issuer.issue(sub=user.id, type="access", ttl_seconds=self._lifetimes.access_seconds)
        refresh, claims = self._issuer.issue(
            sub=user.id, type="refresh", ttl_seconds=self._lifetimes.refresh_seconds, family=family_id
        )
        record = RefreshTokenRecord(
            jti=claims.jti,
            user_id=user.id,
            family_id=family_id,
            expires_at=datetime.fromtimestamp(claims.exp, UTC),
            create_time=self._clock(),
        )
        pair = TokenPair(
            access_token=access, refresh_token=refresh, expires_in=self._lifetimes.access_seconds, user=user
        )
        return pair, record


def _known_record(record: RefreshTokenRecord | None, claims: Claims) -> bool:
    """The stored record matches what the signed token says (user and login family)."""
    return record is not None and record.user_id == claims.sub and record.family_id == claims.family
