"""Write a development .env with a random 64-byte JWT secret and a random AUTH_SERVICE_TOKEN (stdlib only).

An existing .env is kept; only settings it lacks and that `make run` needs (AUTH_SERVICE_TOKEN, added after
the first .env files were written) are appended.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

TEMPLATE = """# Development settings written by `make run`. Keep this file private; it is git-ignored.
JWT_SECRET_KEY={secret}
AUTH_DATABASE_URL=sqlite:///data/auth.db
DOWNLOAD_DATABASE_URL=sqlite:///data/download.db
AUTH_GRPC_ADDR=127.0.0.1:50051
DOWNLOAD_GRPC_ADDR=127.0.0.1:50052
STORAGE_DIR=./storage
LOG_LEVEL=INFO
"""
SERVICE_TOKEN_LINE = (
    "# The bearer secret download servers present to the auth server's ListRevocations.\nAUTH_SERVICE_TOKEN={token}\n"
)


def _has_setting(text: str, name: str) -> bool:
    return any(line.strip().startswith(f"{name}=") for line in text.splitlines())


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
    if path.exists():
        text = path.read_text()
        if _has_setting(text, "AUTH_SERVICE_TOKEN"):
            print(f"{path} exists: keeping it")
            return
        separator = "" if not text or text.endswith("\n") else "\n"
        path.write_text(text + separator + SERVICE_TOKEN_LINE.format(token=secrets.token_urlsafe(32)))
        print(f"{path} exists: added a random AUTH_SERVICE_TOKEN")
        return
    path.write_text(
        TEMPLATE.format(secret=secrets.token_hex(64)) + SERVICE_TOKEN_LINE.format(token=secrets.token_urlsafe(32))
    )
    path.chmod(0o600)
    print(f"wrote {path} with a new random JWT_SECRET_KEY and AUTH_SERVICE_TOKEN")


if __name__ == "__main__":
    main()
