"""TLS channel credentials for the client: what to trust (a CA file) and, for mTLS, what to present.

>>> from clients import connect
>>> from clients.tls import tls_credentials
>>> creds = tls_credentials(ca_file="ca.pem", cert_file="client.pem", key_file="client.key")
>>> client = await connect("auth.internal:50051", "dl.internal:50052", credentials=creds)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import grpc


class TlsFileError(Exception):
    """A TLS file could not be read; the message names it."""


def _read(path: str | os.PathLike[str] | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsFileError(f"cannot read the TLS {what} {os.fspath(path)}: {exc.strerror or exc}") from None


def tls_credentials(
    *,
    ca_file: str | os.PathLike[str] | None = None,
    cert_file: str | os.PathLike[str] | None = None,
    key_file: str | os.PathLike[str] | None = None,
) -> grpc.ChannelCredentials:
    """Channel credentials trusting `ca_file` (None: the system's roots), presenting `cert_file`/`key_file`
    (both or neither) to servers that require client certificates. Files are read now: a client made after a
    certificate rotation uses the new ones."""
    if (cert_file is None) != (key_file is None):
        raise TlsFileError("a client certificate and its key go together: give both or neither")
    return grpc.ssl_channel_credentials(
        root_certificates=_read(ca_file, "CA file"),
        private_key=_read(key_file, "client key"),
        certificate_chain=_read(cert_file, "client certificate"),
    )


def credentials_from_env(environ: Mapping[str, str] | None = None) -> grpc.ChannelCredentials | None:
    """From TLS_CA_FILE, TLS_CLIENT_CERT_FILE and TLS_CLIENT_KEY_FILE (API.md); None (plaintext) if all unset."""
    env = os.environ if environ is None else environ
    ca, cert, key = (env.get(name) or None for name in ("TLS_CA_FILE", "TLS_CLIENT_CERT_FILE", "TLS_CLIENT_KEY_FILE"))
    if ca is None and cert is None and key is None:
        return None
    return tls_credentials(ca_file=ca, cert_file=cert, key_file=key)
