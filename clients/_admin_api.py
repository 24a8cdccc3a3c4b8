"""Superuser methods of the client: list users and change whether they are active or superusers."""

# ruff: noqa: ASYNC109  -- `timeout` is the gRPC deadline passed to the call, grpc's own name for it

from __future__ import annotations

from collections.abc import AsyncIterator

from google.protobuf import field_mask_pb2

from clients import _convert
from clients._pages import ALL_PAGES_SIZE, every_item
from clients._transport import Transport
from clients.models import Page, User
from mediadl.auth.v1 import auth_pb2


class AdminApi:
    _transport: Transport

    async def list_users(
        self, *, query: str = "", page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> Page[User]:
        """One page of users, oldest first; `query` matches email or username in any case (superusers only).

        >>> page = await client.list_users(query="ada")
        """
        request = auth_pb2.ListUsersRequest(query=query, page_size=page_size, page_token=page_token)
        response = await self._transport.unary(self._transport.auth.ListUsers, request, timeout=timeout)
        return _convert.page(response.users, _convert.user, response.next_page_token, response.total_size)

    def iter_users(self, *, query: str = "") -> AsyncIterator[User]:
        """Every matching user across all pages.

        >>> emails = [u.email async for u in client.iter_users()]
        """
        return every_item(lambda token: self.list_users(query=query, page_size=ALL_PAGES_SIZE, page_token=token))

    async def update_user(
        self,
        user_id: str,
        *,
        full_name: str | None = None,
        is_active: bool | None = None,
        is_superuser: bool | None = None,
        timeout: float | None = None,
    ) -> User:
        """Change the fields given (None leaves one alone). Deactivating a user revokes their tokens within
        seconds everywhere; nobody can deactivate or demote themselves (FailedPreconditionError).

        >>> user = await client.update_user(user_id, is_active=False)
        """
        fields: dict[str, object] = {"full_name": full_name, "is_active": is_active, "is_superuser": is_superuser}
        given = sorted(name for name, value in fields.items() if value is not None)
        request = auth_pb2.UpdateUserRequest(
            user_id=user_id,
            full_name=full_name or "",
            is_active=bool(is_active),
            is_superuser=bool(is_superuser),
            update_mask=field_mask_pb2.FieldMask(paths=given),
        )
        response = await self._transport.unary(self._transport.auth.UpdateUser, request, timeout=timeout)
        return _convert.user(response.user)
