"""Exit codes scripts can rely on, the one table from client errors to them, and the one-line messages."""

from __future__ import annotations

from clients.errors import (
    CREDENTIALS_EXPIRED,
    CREDENTIALS_INVALID,
    CREDENTIALS_MISSING,
    AlreadyExistsError,
    AuthenticationError,
    FailedPreconditionError,
    InvalidArgumentError,
    MediadlError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)

OK = 0
ERROR = 1
USAGE = 2
AUTH = 3
NOT_FOUND = 4
INVALID_ARGUMENT = 5
FAILED_PRECONDITION = 6
UNAVAILABLE = 7
INTERRUPTED = 130

EPILOG = """\
exit codes:
  0    success
  1    any other error (also: a watched download ended FAILED, CANCELLED or PARTIAL_COMPLETED)
  2    usage error (bad command line)
  3    not logged in, session expired, or permission denied
  4    not found (or not yours)
  5    invalid argument (the message names the field)
  6    failed precondition: the task's state does not allow it, or it already exists
  7    server unavailable or not answering in time
  130  interrupted (Ctrl-C)

environment:
  MEDIADL_AUTH_ADDR, MEDIADL_DOWNLOAD_ADDR   server addresses (defaults 127.0.0.1:50051 / :50052)
  XDG_CONFIG_HOME                            config directory base (tokens.json lives in <base>/mediadl)
"""

_CODES: list[tuple[type[MediadlError], int]] = [
    (AuthenticationError, AUTH),
    (PermissionDeniedError, AUTH),
    (NotFoundError, NOT_FOUND),
    (InvalidArgumentError, INVALID_ARGUMENT),
    (FailedPreconditionError, FAILED_PRECONDITION),
    (AlreadyExistsError, FAILED_PRECONDITION),
    (UnavailableError, UNAVAILABLE),
]


def exit_code_for(error: MediadlError) -> int:
    for cls, code in _CODES:
        if isinstance(error, cls):
            return code
    return ERROR


def message_for(error: MediadlError) -> str:
    """One line that says what went wrong and, where there is one, what to do about it."""
    if isinstance(error, AuthenticationError):
        if error.reason == CREDENTIALS_MISSING:
            return "not logged in: run `mediadl login`"
        if error.reason in (CREDENTIALS_EXPIRED, CREDENTIALS_INVALID):
            return f"session no longer valid ({error.message}): run `mediadl login` again"
        return f"authentication failed: {error.message}"
    if isinstance(error, InvalidArgumentError) and error.field_violations:
        fields = "; ".join(f"{v.field}: {v.description}" for v in error.field_violations)
        return f"invalid argument: {fields}"
    if isinstance(error, UnavailableError):
        if error.code == "DEADLINE_EXCEEDED":
            return f"the server did not answer in time ({error.message})"
        return f"server unavailable: {error.message} (is it running? `make run` starts both servers)"
    label = error.code.replace("_", " ").lower()
    return f"{label}: {error.message}"
