"""Key commands for operators: `keygen` makes a signing key, `jwks` prints the public keys to publish."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from mediadl_common.keys import load_signing_keys, thumbprint, to_jwk


def new_ed25519_key() -> tuple[bytes, str]:
    """A new Ed25519 private key as PEM, and its kid (RFC 7638 thumbprint)."""
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, thumbprint(private.public_key())


def write_key(pem: bytes, out: str, *, append: bool) -> None:
    """Write (or with `append`, add) a key to `out`, which is created with mode 0600."""
    path = Path(out)
    if path.exists() and not append:
        raise FileExistsError(f"{out} exists: pass --append to add the new key (it then signs), or pick a new file")
    # Created with 0600 from the start: the key is never readable by others, not even for a moment.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as handle:
        handle.write(pem)


def jwks(private_key_file: str, algorithm: str) -> str:
    """The JWKS (public keys only) of a private key file, for JWT_PUBLIC_KEYS_FILE on download servers."""
    keys = load_signing_keys(private_key_file, algorithm)
    return json.dumps({"keys": [to_jwk(k.public_key, k.kid) for k in keys]}, indent=2)
