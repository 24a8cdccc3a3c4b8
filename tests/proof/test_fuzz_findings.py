"""What the fuzzer found, pinned as plain tests on both databases (each was INTERNAL, or worse, before)."""

from __future__ import annotations

import uuid

import grpc

from auth_server.adapters.tokens import JwtIssuer
from mediadl.auth.v1 import auth_pb2
from tests.auth.helpers import PASSWORD, AuthClient, bearer
from tests.proof.statuses import refused


async def test_a_genuine_token_whose_subject_is_not_a_user_id_is_unauthenticated(auth: AuthClient) -> None:
    issuer = JwtIssuer(auth.settings.jwt)
    for sub in ("not-a-uuid", "' OR '1'='1", "x" * 300):
        token, _ = issuer.issue(sub=sub, type="access", ttl_seconds=60)
        for call in (
            auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(token)),
            auth.stub.GetUser(auth_pb2.GetUserRequest(user_id=str(uuid.uuid4())), metadata=bearer(token)),
            auth.stub.UpdateMe(auth_pb2.UpdateMeRequest(full_name="x"), metadata=bearer(token)),
        ):
            assert (await refused(call)).code == grpc.StatusCode.UNAUTHENTICATED


async def test_login_with_a_nul_in_the_email_is_invalid_argument_never_internal(auth: AuthClient) -> None:
    # API.md (issue 16): no text field accepts control characters. The answer does not depend on whether
    # the account exists, so it tells nothing about it.
    user = await auth.register()
    nul = await refused(auth.login(user.email + "\x00", PASSWORD))
    unknown = await refused(auth.login("nobody@example.com\x00", PASSWORD))
    assert nul == unknown
    assert nul.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_huge_field_gets_a_short_answer_and_the_connection_survives(auth: AuthClient) -> None:
    user, session = await auth.new_session()
    md = bearer(session.access_token)
    watch = auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=md)  # another call on the same connection
    request = auth_pb2.UpdateMeRequest(full_name="x")
    request.update_mask.paths.append("é" * 400_000)
    bad = await refused(auth.stub.UpdateMe(request, metadata=md))
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT and len(bad.message.encode()) < 700
    assert (await watch).user.id == user.id
    assert (await auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=md)).user.id == user.id
