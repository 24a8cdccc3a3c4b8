"""Use cases of the auth server: register, login, refresh-token rotation, logout, profile, password, lookup.

Every use case is async; SQL runs in the database thread pool and bcrypt in a pool of its own, so a burst of
logins (each a bcrypt round-trip) never makes the calls that need no hashing wait for a database thread.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from auth_server.domain.ports import BlockingRunner, PasswordHasher, TokenCodec, UniqueViolation, UnitOfWork
from auth_server.domain.tokens import Jwk, RefreshTokenRecord, TokenLifetimes, TokenPair
from auth_server.domain.users import (
    MAX_PASSWORD_BYTES,
    ProfileChanges,
    User,
    check_password,
    normalise_email,
    parse_user_id,
    validate_registration,
)
from auth_server.throttle import LoginThrottle, ThrottlePolicy
from mediadl_common.errors import (
    CREDENTIALS_INVALID,
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Validator,
)
from mediadl_common.tokens import Claims, TokenError

log = logging.getLogger(__name__)

# One message for unknown email and wrong password: the answer must not tell which it was.
LOGIN_FAILED = "incorrect email or password"
REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED"
USER_INACTIVE = "USER_INACTIVE"


def utc_now() -> datetime:
    return datetime.now(UTC)


class AuthService:
    """The auth use cases over ports (unit of work, hasher, codec): no gRPC, no SQL here."""

    def __init__(
        self,
        *,
        runner: BlockingRunner,
        uow: Callable[[], UnitOfWork],
        hasher: PasswordHasher,
        codec: TokenCodec,
        lifetimes: TokenLifetimes,
        jwks: Sequence[Jwk] = (),
        clock: Callable[[], datetime] = utc_now,
        throttle: LoginThrottle | None = None,
        hashing: BlockingRunner | None = None,
    ) -> None:
        self._run = runner.run
        self._hash = (hashing or runner).run
        self._uow = uow
        self._hasher = hasher
        self._codec = codec
        self._lifetimes = lifetimes
        self._jwks = list(jwks)
        self._clock = clock
        self._throttle = throttle or LoginThrottle(ThrottlePolicy(max_failures=0, peer_max_failures=0))

    # --- accounts ---------------------------------------------------------------------------------------

    async def register(self, *, email: str, username: str, password: str, full_name: str) -> User:
        email = normalise_email(email)
        validate_registration(email=email, username=username, password=password, full_name=full_name)
        password_hash = await self._hash(self._hasher.hash, password)
        user = await self._run(self._add_user, email, username, password_hash, full_name, False)
        log.info("registered user %s", user.id)
        return user

    async def ensure_first_superuser(self, *, email: str, username: str, password: str) -> bool:
        """Create the superuser unless a user with that email exists; True if it was created."""
        email = normalise_email(email)
        validate_registration(email=email, username=username, password=password, full_name="")
        if await self._run(self._email_taken, email):
            log.info("first superuser already exists")
            return False
        password_hash = await self._hash(self._hasher.hash, password)
        try:
            user = await self._run(self._add_user, email, username, password_hash, "", True)
        except AlreadyExists:
            # Another instance starting at the same moment may have created it: that is success too.
            if await self._run(self._email_taken, email):
                return False
            raise
        log.info("created first superuser %s", user.id)
        return True

    async def get_me(self, user_id: str) -> User:
        return await self._run(self._active_user, user_id)

    async def update_me(self, user_id: str, changes: ProfileChanges) -> User:
        changes.selected()  # validate before touching the database
        return await self._run(self._update_profile, user_id, changes)

    async def change_password(self, user_id: str, *, current_password: str, new_password: str) -> None:
        check = Validator()
        check.check(bool(current_password), "current_password", "is required")
        check_password(check, "new_password", new_password)
        check.check(new_password != current_password, "new_password", "must differ from the current password")
        check.raise_if_any()
        user = await self._run(self._active_user, user_id)
        # bcrypt runs outside any transaction: a slow hash must not hold a connection or a lock.
        if not await self._hash(self._hasher.verify, current_password, user.password_hash):
            raise InvalidArgument.field("current_password", "is not the current password")
        new_hash = await self._hash(self._hasher.hash, new_password)
        await self._run(self._store_password, user_id, new_hash)
        log.info("user %s changed password: all refresh tokens revoked", user_id)

    async def get_user(self, caller_id: str, user_id: str) -> User:
        return await self._run(self._get_user, caller_id, parse_user_id(user_id))

    def get_jwks(self) -> list[Jwk]:
        """The public keys verifiers may trust (empty with HS*: that key is a shared secret)."""
        return list(self._jwks)

    # --- tokens -----------------------------------------------------------------------------------------

    async def login(self, *, email: str, password: str, client: str = "") -> TokenPair:
        """`client` keys the per-client brute-force count (see throttle.py); empty means unknown."""
        email = normalise_email(email)
        check = Validator()
        check.check(bool(email), "email", "is required")
        check.check(bool(password), "password", "is required")
        check.check(
            len(password.encode("utf-8")) <= MAX_PASSWORD_BYTES,
            "password",
            f"must be at most {MAX_PASSWORD_BYTES} bytes",
        )
        check.raise_if_any()
        attempt = self._throttle.begin(email, client)
        try:
            pair = await self._authenticate(email, password)
        except Unauthenticated:
            attempt.failed()
            raise
        except BaseException:
            attempt.withdrawn()
            raise
        attempt.succeeded()
        log.info("user %s logged in", pair.user.id)
        return pair

    async def _authenticate(self, email: str, password: str) -> TokenPair:
        user = await self._run(self._user_by_email, email)
        if not await self._hash(self._password_matches, user, password):
            raise Unauthenticated(LOGIN_FAILED, reason=CREDENTIALS_INVALID)
        assert user is not None  # only a real user's hash can match
        _require_active(user)
        return await self._run(self._new_login, user)

    async def refresh(self, refresh_token: str) -> TokenPair:
        return await self._run(self._rotate, self._verify_refresh(refresh_token))

    async def logout(self, refresh_token: str) -> None:
        await self._run(self._logout, self._verify_refresh(refresh_token))

    # --- blocking parts (database thread pool) ----------------------------------------------------------

    def _add_user(self, email: str, username: str, password_hash: str, full_name: str, superuser: bool) -> User:
        user = User.new(
            email=email,
            username=username,
            password_hash=password_hash,
            full_name=full_name,
            now=self._clock(),
            superuser=superuser,
        )
        with self._uow() as uow:
            _refuse_taken(uow, email, username)
            uow.users.add(user)
            try:
                uow.commit()
                return user
            except UniqueViolation:
                pass
        # A concurrent registration won the race between our check and our insert: it is visible now.
        with self._uow() as uow:
            _refuse_taken(uow, email, username)
        raise AlreadyExists("a user with this email or username already exists")

    def _email_taken(self, email: str) -> bool:
        with self._uow() as uow:
            return uow.users.get_by_email(email) is not None

    def _active_user(self, user_id: str) -> User:
        with self._uow() as uow:
            return _require_active(uow.users.get(user_id))

    def _update_profile(self, user_id: str, changes: ProfileChanges) -> User:
        with self._uow() as uow:
            user = _require_active(uow.users.get(user_id))
            updated = changes.apply(user, self._clock())
            if updated is not user:
                uow.users.save(updated)
                uow.commit()
            return updated

    def _store_password(self, user_id: str, new_hash: str) -> None:
        now = self._clock()
        with self._uow() as uow:
            fresh = _require_active(uow.users.get(user_id))
            uow.users.save(replace(fresh, password_hash=new_hash, update_time=now))
            uow.refresh_tokens.revoke_user(user_id, now)
            uow.commit()

    def _get_user(self, caller_id: str, user_id: str) -> User:
        with self._uow() as uow:
            caller = _require_active(uow.users.get(caller_id))
            if user_id != caller.id and not caller.is_superuser:
                raise PermissionDenied("only a superuser may read another user's profile")
            user = uow.users.get(user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

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
                _require_active(user)
                pair, successor = self._issue_pair(user, family_id=record.family_id)
                # Compare-and-set: of two concurrent rotations of one token, exactly one wins.
                if uow.refresh_tokens.mark_used(record.jti, used_at=now, replaced_by=successor.jti):
                    uow.refresh_tokens.add(successor)
                    uow.commit()
                    return pair
            # Rotated or revoked already: a second holder means the token was copied. Cut off the whole login.
            revoked = uow.refresh_tokens.revoke_family(record.family_id, now)
            uow.commit()
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
        access, _ = self._codec.issue(sub=user.id, type="access", ttl_seconds=self._lifetimes.access_seconds)
        refresh, claims = self._codec.issue(
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

    def _verify_refresh(self, token: str) -> Claims:
        if not token:
            raise InvalidArgument.field("refresh_token", "is required")
        try:
            return self._codec.verify(token, "refresh")
        except TokenError as exc:
            raise Unauthenticated(exc.message, reason=exc.reason) from None


def _known_record(record: RefreshTokenRecord | None, claims: Claims) -> bool:
    """The stored record matches what the signed token says (user and login family)."""
    return record is not None and record.user_id == claims.sub and record.family_id == claims.family


def _require_active(user: User | None) -> User:
    if user is None:
        # The token is genuine but its account is gone: the credentials no longer name anyone.
        raise Unauthenticated("the account of this token no longer exists")
    if not user.is_active:
        raise PermissionDenied("this account is inactive", reason=USER_INACTIVE)
    return user


def _refuse_taken(uow: UnitOfWork, email: str, username: str) -> None:
    if uow.users.get_by_email(email) is not None:
        raise AlreadyExists("a user with this email already exists", reason="EMAIL_TAKEN")
    if uow.users.get_by_username(username) is not None:
        raise AlreadyExists("a user with this username already exists", reason="USERNAME_TAKEN")
