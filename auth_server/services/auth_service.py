"""Every auth use case behind one object, as the servicer and the composition root hold them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from auth_server.domain.ports import (
    BlockingRunner,
    HashRunner,
    PasswordHasher,
    TokenIssuer,
    TokenVerifier,
    UnitOfWork,
    UserReads,
)
from auth_server.domain.tokens import Jwk, TokenLifetimes
from auth_server.services.accounts import AccountService
from auth_server.services.admin import AdminService
from auth_server.services.common import OnRevoked, ignore_revocation, utc_now
from auth_server.services.paging import TOKEN_LABEL
from auth_server.services.sessions import SessionService
from auth_server.throttle import LoginThrottle
from mediadl_common.page_tokens import PageTokens


class AuthService:
    """`accounts`, `sessions` and `admin` built over one set of ports, plus the public keys GetJwks publishes.

    `page_secret` keys ListUsers' page tokens (the JWT secret); `service_token` is AUTH_SERVICE_TOKEN.
    """

    def __init__(
        self,
        *,
        runner: BlockingRunner,
        uow: Callable[[], UnitOfWork],
        hasher: PasswordHasher,
        issuer: TokenIssuer,
        verifier: TokenVerifier,
        lifetimes: TokenLifetimes,
        jwks: Sequence[Jwk] = (),
        clock: Callable[[], datetime] = utc_now,
        throttle: LoginThrottle | None = None,
        hashing: HashRunner | None = None,
        page_secret: str,
        service_token: str | None = None,
        on_revoked: OnRevoked = ignore_revocation,
        reads: UserReads | None = None,
    ) -> None:
        self.accounts = AccountService(
            runner=runner,
            uow=uow,
            hasher=hasher,
            clock=clock,
            hashing=hashing,
            throttle=throttle,
            on_revoked=on_revoked,
            reads=reads,
        )
        self.admin = AdminService(
            runner=runner,
            uow=uow,
            page_tokens=PageTokens(page_secret, TOKEN_LABEL),
            service_token=service_token,
            access_ttl_seconds=lifetimes.access_seconds,
            clock=clock,
            on_revoked=on_revoked,
        )
        self.sessions = SessionService(
            runner=runner,
            uow=uow,
            hasher=hasher,
            issuer=issuer,
            verifier=verifier,
            lifetimes=lifetimes,
            clock=clock,
            throttle=throttle,
            hashing=hashing,
            on_revoked=on_revoked,
        )
        self._jwks = list(jwks)

    def get_jwks(self) -> list[Jwk]:
        """The public keys verifiers may trust (empty with HS*: that key is a shared secret)."""
        return list(self._jwks)
