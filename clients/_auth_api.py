"""AuthService methods of the client: register, login, logout, whoami, refresh and the profile calls."""

# ruff: noqa: ASYNC109  -- `timeout` is the gRPC deadline passed to the call, grpc's own name for it

from __future__ import annotations

from google.protobuf import field_mask_pb2

from clients import _convert
from clients._transport import Transport, tokens_from
from clients.errors import AuthenticationError
from clients.models import User
from mediadl.auth.v1 import auth_pb2


class AuthApi:
    _transport: Transport

    @property
    def is_logged_in(self) -> bool:
        """True when the token store holds a token pair (it may still turn out to be revoked)."""
        return self._transport.session.store.load() is not None

    async def register(
        self,
        *,
        email: str,
        username: str,
        password: str,
        full_name: str = "",
        timeout: float | None = None,
        forwarded_for: str | None = None,
    ) -> User:
        """Create an account; it does not log in. `forwarded_for`: see login().

        >>> user = await client.register(email="ada@example.com", username="ada", password="correct horse")
        """
        request = auth_pb2.RegisterRequest(email=email, username=username, password=password, full_name=full_name)
        response = await self._transport.unary(
            self._transport.auth.Register,
            request,
            timeout=timeout,
            authenticated=False,
            extra=_forwarded(forwarded_for),
        )
        return _convert.user(response.user)

    async def login(
        self, email: str, password: str, *, timeout: float | None = None, forwarded_for: str | None = None
    ) -> User:
        """Exchange email and password for a token pair, kept in the client's token store.

        A proxy relaying someone else's login (the dashboard) names them in `forwarded_for` (their address),
        so the auth server's throttle counts that person, not the proxy; it is believed only from an address
        in the server's AUTH_TRUSTED_PROXIES.

        >>> me = await client.login("ada@example.com", "correct horse")
        >>> me.username
        'ada'
        """
        request = auth_pb2.LoginRequest(email=email, password=password)
        response = await self._transport.unary(
            self._transport.auth.Login, request, timeout=timeout, authenticated=False, extra=_forwarded(forwarded_for)
        )
        self._transport.session.store.save(tokens_from(response))
        return _convert.user(response.user)

    async def logout(self, *, timeout: float | None = None) -> None:
        """Revoke this login's refresh tokens on the server and forget the local pair; no-op when logged out.

        If the server cannot be reached (UnavailableError) the tokens are kept, so logout can be retried.

        >>> await client.logout()
        """
        tokens = self._transport.session.store.load()
        if tokens is None:
            return
        request = auth_pb2.LogoutRequest(refresh_token=tokens.refresh_token)
        try:
            await self._transport.unary(self._transport.auth.Logout, request, timeout=timeout, authenticated=False)
        except AuthenticationError:
            pass  # already expired or revoked: the login is over either way
        self._transport.session.store.clear()

    async def refresh(self) -> None:
        """Rotate the token pair now. Calls refresh by themselves when the access token expires.

        >>> await client.refresh()
        """
        await self._transport.session.refresh()

    async def whoami(self, *, timeout: float | None = None) -> User:
        """The logged-in user's profile (GetMe).

        >>> (await client.whoami()).email
        'ada@example.com'
        """
        response = await self._transport.unary(self._transport.auth.GetMe, auth_pb2.GetMeRequest(), timeout=timeout)
        return _convert.user(response.user)

    async def update_me(
        self,
        *,
        full_name: str | None = None,
        bio: str | None = None,
        avatar_url: str | None = None,
        timeout: float | None = None,
    ) -> User:
        """Change the profile fields given (None leaves a field alone; "" clears it).

        >>> me = await client.update_me(bio="I download things")
        """
        fields = {"full_name": full_name, "bio": bio, "avatar_url": avatar_url}
        given = {name: value for name, value in fields.items() if value is not None}
        request = auth_pb2.UpdateMeRequest(**given, update_mask=field_mask_pb2.FieldMask(paths=sorted(given)))
        response = await self._transport.unary(self._transport.auth.UpdateMe, request, timeout=timeout)
        return _convert.user(response.user)

    async def change_password(self, current_password: str, new_password: str, *, timeout: float | None = None) -> None:
        """Set a new password. The server revokes every refresh token of the user: log in again afterwards.

        >>> await client.change_password("correct horse", "battery staple")
        """
        request = auth_pb2.ChangePasswordRequest(current_password=current_password, new_password=new_password)
        await self._transport.unary(self._transport.auth.ChangePassword, request, timeout=timeout)

    async def get_user(self, user_id: str, *, timeout: float | None = None) -> User:
        """A user by id: your own, or anyone's for a superuser (else PermissionDeniedError).

        >>> user = await client.get_user(me.id)
        """
        request = auth_pb2.GetUserRequest(user_id=user_id)
        response = await self._transport.unary(self._transport.auth.GetUser, request, timeout=timeout)
        return _convert.user(response.user)


def _forwarded(address: str | None) -> tuple[tuple[str, str], ...]:
    return (("x-forwarded-for", address),) if address else ()
