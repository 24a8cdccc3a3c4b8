"""Protobuf <-> domain conversions: the only auth_server code (with the servicer) that touches messages."""

from __future__ import annotations

from auth_server.domain.tokens import Jwk, TokenPair
from auth_server.domain.users import ProfileChanges, User
from mediadl.auth.v1 import auth_pb2
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
