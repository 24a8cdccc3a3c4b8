"""`python -m auth_server keygen` and `jwks`, run as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mediadl_common.keys import load_signing_keys, parse_jwks


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("JWT_")}
    return subprocess.run(
        [sys.executable, "-m", "auth_server", *args], cwd=cwd, env={**clean, **env}, capture_output=True, text=True
    )


def test_keygen_then_rotate_then_publish(tmp_path: Path) -> None:
    first = run("keygen", "--out", "keys.pem", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "keys.pem").stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY" not in first.stdout + first.stderr  # the key goes to the file only

    refused = run("keygen", "--out", "keys.pem", cwd=tmp_path)
    assert refused.returncode == 1 and "--append" in refused.stderr

    appended = run("keygen", "--out", "keys.pem", "--append", cwd=tmp_path)
    assert appended.returncode == 0
    keys = load_signing_keys(tmp_path / "keys.pem", "EdDSA")
    # The appended key is the newest, so it signs; its kid is what the command reported.
    assert len(keys) == 2 and keys[-1].kid in appended.stderr

    published = run(
        "jwks", cwd=tmp_path, JWT_SECRET_KEY="x" * 40, JWT_ALGORITHM="EdDSA", JWT_PRIVATE_KEY_FILE="keys.pem"
    )
    assert published.returncode == 0, published.stderr
    document = json.loads(published.stdout)
    assert list(parse_jwks(document, "EdDSA")) == [k.kid for k in keys]
    assert all("d" not in entry for entry in document["keys"]), "private part never published"


def test_jwks_needs_asymmetric_settings(tmp_path: Path) -> None:
    result = run("jwks", cwd=tmp_path, JWT_SECRET_KEY="x" * 40)
    assert result.returncode == 2 and "configuration error" in result.stderr and "Traceback" not in result.stderr
