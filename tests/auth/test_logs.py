"""No secret, password or token reaches a log record during a whole session, at DEBUG level."""

from __future__ import annotations

import logging

import pytest

from mediadl.auth.v1 import auth_pb2
from tests.auth.helpers import PASSWORD, SECRET, AuthClient, bearer, failure

NEW_PASSWORD = "another secret passphrase"


async def test_a_full_session_logs_no_secret_password_or_token(
    auth: AuthClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user = await auth.register(password=PASSWORD)
    session = await auth.login(user.email, PASSWORD)
    rotated = await auth.stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=session.refresh_token))
    md = bearer(rotated.access_token)
    await auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=md)
    await auth.stub.ChangePassword(
        auth_pb2.ChangePasswordRequest(current_password=PASSWORD, new_password=NEW_PASSWORD), metadata=md
    )
    # Failures log too: a wrong password, a reused token, a refused access token.
    await failure(auth.login(user.email, "wrong " + PASSWORD))
    await failure(auth.stub.RefreshToken(auth_pb2.RefreshTokenRequest(refresh_token=session.refresh_token)))
    await failure(auth.stub.GetMe(auth_pb2.GetMeRequest(), metadata=bearer(session.refresh_token)))

    # The records themselves, before any redacting handler: nothing sensitive may be logged at all.
    logged = "\n".join(
        [caplog.text, *(r.getMessage() for r in caplog.records), *(repr(r.__dict__) for r in caplog.records)]
    )
    assert user.id in logged  # the capture works: ids are logged
    secrets = [SECRET, PASSWORD, NEW_PASSWORD, session.access_token, session.refresh_token, rotated.refresh_token]
    for secret in secrets:
        assert secret not in logged
    for token in (session.access_token, session.refresh_token, rotated.access_token):
        assert token.split(".")[2] not in logged  # not even a token's signature
