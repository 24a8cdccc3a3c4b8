"""Write a development .env with a random 64-byte JWT secret, unless one exists (stdlib only)."""

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


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
    if path.exists():
        print(f"{path} exists: keeping it")
        return
    path.write_text(TEMPLATE.format(secret=secrets.token_hex(64)))
    path.chmod(0o600)
    print(f"wrote {path} with a new random JWT_SECRET_KEY")


if __name__ == "__main__":
    main()
