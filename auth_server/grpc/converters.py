"""Protobuf <-> domain conversions: the only auth_server code (with the servicer) that touches messages."""

from __future__ import annotations

from datetime import UTC, datetime

from auth_server.domain.admin import UserChanges
from auth_server.domain.tokens import Jwk, TokenPair
from auth_server.domain.users import ProfileChanges, User
from auth_server.services.admin import Revocations, UserPage
from mediadl.auth.v1 import auth_pb2
from mediadl_common.errors import InvalidArgument
from mediadl_common.proto_time import timestamp


def user_to_proto(user: User) -> auth_pb2.User:
    """Field by field, on purpose: the password hash has no field to land in."""
    return auth_pb2.User(
        id=user.id,
        email=user.email,
        username=user.username,
        full_name=user.full_name,
        bio=user.bio,
        avatar_url=user.avatar_url,
        is_active=user.is_active,
        is_superuser=user.is_superuser,
        create_time=timestamp(user.create_time),
        update_time=timestamp(user.update_time),
    )


def login_response(pair: TokenPair) -> auth_pb2.LoginResponse:
    return auth_pb2.LoginResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
        user=user_to_proto(pair.user),
    )


def refresh_response(pair: TokenPair) -> auth_pb2.RefreshTokenResponse:
    return auth_pb2.RefreshTokenResponse(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        token_type=pair.token_type,
        expires_in=pair.expires_in,
        user=user_to_proto(pair.user),
    )


def profile_changes(request: auth_pb2.UpdateMeRequest) -> ProfileChanges:
    return ProfileChanges(
        full_name=request.full_name,
        bio=request.bio,
        avatar_url=request.avatar_url,
        paths=tuple(request.update_mask.paths),
    )


def jwks_response(keys: list[Jwk]) -> auth_pb2.GetJwksResponse:
    return auth_pb2.GetJwksResponse(
        keys=[auth_pb2.Jwk(kty=k.kty, crv=k.crv, x=k.x, kid=k.kid, alg=k.alg, use=k.use, n=k.n, e=k.e) for k in keys]
    )


def list_users_response(page: UserPage) -> auth_pb2.ListUsersResponse:
    return auth_pb2.ListUsersResponse(
        users=[user_to_proto(user) for user in page.users],
        next_page_token=page.next_page_token,
        total_size=page.total_size,
    )


def user_changes(request: auth_pb2.UpdateUserRequest) -> UserChanges:
    return UserChanges(
        user_id=request.user_id,
        full_name=request.full_name,
        is_active=request.is_active,
        is_superuser=request.is_superuser,
        paths=tuple(request.update_mask.paths),
    )


def since_time(request: auth_pb2.ListRevocationsRequest) -> datetime | None:
    if not request.HasField("since_time"):
        return None
    try:
        return request.since_time.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument.field("since_time", "is not a valid timestamp") from None


def revocations_response(revocations: Revocations) -> auth_pb2.ListRevocationsResponse:
    return auth_pb2.ListRevocationsResponse(
        revocations=[
            auth_pb2.Revocation(user_id=user_id, revoke_time=timestamp(when)) for user_id, when in revocations.entries
        ],
        server_time=timestamp(revocations.server_time),
    )
