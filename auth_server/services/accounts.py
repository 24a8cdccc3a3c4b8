"""Account use cases: register, the first superuser, profile, password change and looking a user up."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from auth_server.domain.ports import (
    BlockingRunner,
    HashRunner,
    PasswordHasher,
    UniqueViolation,
    UnitOfWork,
    UserReads,
)
from auth_server.domain.users import (
    ProfileChanges,
    User,
    check_password,
    normalise_email,
    parse_user_id,
    validate_registration,
)
from auth_server.services.common import (
    OnRevoked,
    UnlanedHashing,
    ignore_revocation,
    refuse_taken,
    require_active,
    utc_now,
)
from auth_server.throttle import LoginThrottle, ThrottlePolicy
from mediadl_common.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied, Validator

log = logging.getLogger(__name__)


class AccountService:
    """The account use cases over ports (unit of work, hasher): no gRPC, no SQL here."""

    def __init__(
        self,
        *,
        runner: BlockingRunner,
        uow: Callable[[], UnitOfWork],
        hasher: PasswordHasher,
        clock: Callable[[], datetime] = utc_now,
        hashing: HashRunner | None = None,
        throttle: LoginThrottle | None = None,
        on_revoked: OnRevoked = ignore_revocation,
        reads: UserReads | None = None,
    ) -> None:
        self._on_revoked = on_revoked
        self._reads = reads
        self._run = runner.run
        self._hash = (hashing or UnlanedHashing(runner)).run_for
        self._uow = uow
        self._hasher = hasher
        self._clock = clock
        self._throttle = throttle or LoginThrottle(ThrottlePolicy(0, 0, 0, 0))

    async def register(self, *, email: str, username: str, password: str, full_name: str, client: str = "") -> User:
        """`client` keys the per-client Register throttle and hashing lane (see throttle.py, adapters/hashing.py)."""
        email = normalise_email(email)
        validate_registration(email=email, username=username, password=password, full_name=full_name)
        self._throttle.admit_registration(client)
        # A duplicate is refused before bcrypt runs: a taken name must not cost (or let anyone spend) a hash.
        await self._run(self._refuse_taken, email, username)
        password_hash = await self._hash(client, self._hasher.hash, password)
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
        password_hash = await self._hash("", self._hasher.hash, password)
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
        if self._reads is not None:  # the hot read, without a unit of work (adapters/user_reads.py)
            return require_active(await self._reads.get(user_id))
        return await self._run(self._active_user, user_id)

    async def update_me(self, user_id: str, changes: ProfileChanges) -> User:
        changes.selected()  # validate before touching the database
        return await self._run(self._update_profile, user_id, changes)

    async def change_password(
        self, user_id: str, *, current_password: str, new_password: str, client: str = ""
    ) -> None:
        """A wrong current password counts like a failed login of that account from `client` (throttled)."""
        check = Validator()
        check.check(bool(current_password), "current_password", "is required")
        check_password(check, "new_password", new_password)
        check.check(new_password != current_password, "new_password", "must differ from the current password")
        check.raise_if_any()
        user = await self._run(self._active_user, user_id)
        attempt = self._throttle.begin(user.email, client)
        try:
            # bcrypt runs outside any transaction: a slow hash must not hold a connection or a lock.
            matches = await self._hash(client, self._hasher.verify, current_password, user.password_hash)
        except BaseException:
            attempt.withdrawn()
            raise
        if not matches:
            attempt.failed()
            raise InvalidArgument.field("current_password", "is not the current password")
        attempt.succeeded()
        new_hash = await self._hash(client, self._hasher.hash, new_password)
        await self._run(self._store_password, user_id, new_hash)
        log.info("user %s changed password: all its refresh and access tokens revoked", user_id)

    async def get_user(self, caller_id: str, user_id: str) -> User:
        return await self._run(self._get_user, caller_id, parse_user_id(user_id))

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
            refuse_taken(uow, email, username)
            uow.users.add(user)
            try:
                uow.commit()
                return user
            except UniqueViolation:
                pass
        # A concurrent registration won the race between our check and our insert: it is visible now.
        with self._uow() as uow:
            refuse_taken(uow, email, username)
        raise AlreadyExists("a user with this email or username already exists")

    def _refuse_taken(self, email: str, username: str) -> None:
        with self._uow() as uow:
            refuse_taken(uow, email, username)

    def _email_taken(self, email: str) -> bool:
        with self._uow() as uow:
            return uow.users.get_by_email(email) is not None

    def _active_user(self, user_id: str) -> User:
        with self._uow() as uow:
            return require_active(uow.users.get(user_id))

    def _update_profile(self, user_id: str, changes: ProfileChanges) -> User:
        with self._uow() as uow:
            user = require_active(uow.users.get(user_id))
            updated = changes.apply(user, self._clock())
            if updated is not user:
                uow.users.save(updated)
                uow.commit()
            return updated

    def _store_password(self, user_id: str, new_hash: str) -> None:
        now = self._clock()
        with self._uow() as uow:
            fresh = require_active(uow.users.get(user_id))
            # A leaked password's tokens must stop working too, not only its refresh tokens.
            uow.users.save(replace(fresh, password_hash=new_hash, update_time=now, tokens_revoked_at=now))
            uow.refresh_tokens.revoke_user(user_id, now)
            uow.commit()
        self._on_revoked(user_id, now)

    def _get_user(self, caller_id: str, user_id: str) -> User:
        with self._uow() as uow:
            caller = require_active(uow.users.get(caller_id))
            if user_id != caller.id and not caller.is_superuser:
                raise PermissionDenied("only a superuser may read another user's profile")
            user = uow.users.get(user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user
