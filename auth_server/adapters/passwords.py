"""bcrypt password hashing, with a dummy hash so a login for an unknown email costs as much as a wrong password."""

from __future__ import annotations

import bcrypt

from auth_server.domain.users import MAX_PASSWORD_BYTES


class BcryptHasher:
    """Blocking by design (bcrypt is slow on purpose): run it in the database thread pool, never on the loop."""

    def __init__(self, rounds: int = 12) -> None:
        self._rounds = rounds
        # Login checks a password against this when the email is unknown. Without it an unknown email
        # answers in microseconds and a known one in a bcrypt round-trip: an attacker could enumerate
        # accounts by timing (the fastapi full-stack template guards authenticate() the same way).
        # Made at start with our own cost factor, so both paths cost exactly the same.
        self._dummy_hash = self.hash("dummy password that matches nothing")

    def hash(self, password: str) -> str:
        return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(self._rounds)).decode("ascii")

    def verify(self, password: str, password_hash: str) -> bool:
        secret = password.encode("utf-8")
        if len(secret) > MAX_PASSWORD_BYTES:
            # Never stored (registration refuses it); bcrypt itself would raise rather than answer.
            return False
        try:
            return bcrypt.checkpw(secret, password_hash.encode("ascii"))
        except ValueError:
            # A corrupt stored hash is a failed login, not a crash.
            return False

    def verify_dummy(self, password: str) -> None:
        self.verify(password, self._dummy_hash)
