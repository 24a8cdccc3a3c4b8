"""Adapters of the auth server: SQL storage (SQLAlchemy), bcrypt passwords, token signing (PyJWT)."""
