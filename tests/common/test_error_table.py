"""The one table from error kinds to gRPC codes covers every kind, and database failures reach it as UNAVAILABLE."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

# Imported for the DomainError subclasses they define: every kind the servers can raise must be in the table.
import auth_server.services  # noqa: F401
import download_server.grpc.servicer  # noqa: F401
import mediadl_common.tokens  # noqa: F401
from mediadl_common.db import DATABASE_UNAVAILABLE, database_unavailable
from mediadl_common.errors import DomainError, Unavailable
from mediadl_common.grpc_status import STATUS_CODES, status_code_for, status_for


def every_kind(root: type[DomainError] = DomainError) -> list[type[DomainError]]:
    found: list[type[DomainError]] = []
    for cls in root.__subclasses__():
        found += [cls, *every_kind(cls)]
    return found


def test_every_direct_kind_has_a_row_of_its_own() -> None:
    direct = DomainError.__subclasses__()
    assert direct, "no error kinds found"
    assert sorted(k.__name__ for k in direct if k not in STATUS_CODES) == []


@pytest.mark.parametrize("kind", every_kind(), ids=lambda kind: kind.__qualname__)
def test_every_kind_and_subkind_maps_to_a_real_code(kind: type[DomainError]) -> None:
    code = status_code_for(kind.__new__(kind))  # only the type counts; no constructor arguments needed
    assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.OK)
    assert code == next(STATUS_CODES[c] for c in kind.__mro__ if c in STATUS_CODES)


def test_a_status_carries_the_code_message_and_reason() -> None:
    status = status_for(Unavailable("try later", reason="BUSY"))
    assert (status.code, status.details) == (grpc.StatusCode.UNAVAILABLE, "try later")


def test_lost_database_connections_are_unavailable_and_other_database_errors_are_not() -> None:
    down = OperationalError("SELECT 1", {}, ConnectionError("gone"))
    invalidated = DBAPIError("SELECT 1", {}, ConnectionError("reset"), connection_invalidated=True)
    for exc in (down, invalidated):
        error = database_unavailable(exc)
        assert isinstance(error, Unavailable) and error.reason == DATABASE_UNAVAILABLE
        assert status_code_for(error) == grpc.StatusCode.UNAVAILABLE
    assert database_unavailable(IntegrityError("INSERT", {}, ValueError("duplicate"))) is None
    assert database_unavailable(RuntimeError("bug")) is None
