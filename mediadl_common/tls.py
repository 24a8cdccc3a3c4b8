"""TLS for both servers and every caller: settings from the environment, server credentials that pick up
certificates replaced on disk (no restart), and channel credentials for callers (optionally mTLS).

Servers: `{AUTH,DOWNLOAD}_TLS_CERT_FILE` and `_KEY_FILE` (both or neither: then plaintext), and
`_TLS_CLIENT_CA_FILE` to require client certificates signed by that CA. Callers: `TLS_CA_FILE` (what they
trust), `TLS_CLIENT_CERT_FILE` / `_KEY_FILE` (what they present).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from mediadl_common import tracing
from mediadl_common.config import ConfigError, Env

log = logging.getLogger(__name__)


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _pair(env: Env, cert_name: str, key_name: str) -> tuple[str, str] | None:
    cert, key = env.get(cert_name) or None, env.get(key_name) or None
    if (cert is None) != (key is None):
        # Half a pair is a typo, not a choice: refuse rather than fall back to plaintext.
        raise ConfigError(f"{cert_name} and {key_name} must be set together")
    return (cert, key) if cert and key else None


@dataclass(frozen=True)
class ServerTls:
    """A server's certificate and key files, and the CA its clients' certificates must chain to (mTLS)."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None

    @classmethod
    def from_env(cls, env: Env, prefix: str) -> ServerTls | None:
        """`{prefix}_TLS_CERT_FILE` / `_KEY_FILE` / `_CLIENT_CA_FILE`; None (plaintext) when unset."""
        pair = _pair(env, f"{prefix}_TLS_CERT_FILE", f"{prefix}_TLS_KEY_FILE")
        client_ca = env.get(f"{prefix}_TLS_CLIENT_CA_FILE") or None
        if pair is None:
            if client_ca:
                raise ConfigError(f"{prefix}_TLS_CLIENT_CA_FILE needs {prefix}_TLS_CERT_FILE and _KEY_FILE")
            return None
        settings = cls(pair[0], pair[1], client_ca)
        settings.load()  # unreadable files stop the start with a clear message
        return settings

    @property
    def mutual(self) -> bool:
        return self.client_ca_file is not None

    def load(self) -> grpc.ServerCertificateConfiguration:
        pair = (_read(self.key_file, "TLS key"), _read(self.cert_file, "TLS certificate"))
        root = _read(self.client_ca_file, "TLS client CA") if self.client_ca_file else None
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=root)

    def _stamp(self) -> tuple[tuple[int, int], ...]:
        files = [self.cert_file, self.key_file, *([self.client_ca_file] if self.client_ca_file else [])]
        stamps = []
        for name in files:
            try:
                info = os.stat(name)
            except OSError:
                return ()  # mid-replacement: keep serving the last good files
            stamps.append((info.st_mtime_ns, info.st_size))
        return tuple(stamps)

    def credentials(self) -> grpc.ServerCredentials:
        """Server credentials that re-read the files for new connections once they change on disk.

        gRPC asks the fetcher at each new handshake; it answers None (keep) unless the files' mtimes or sizes
        moved, so a renewed certificate is served to new connections without a restart, and a half-written
        pair (unreadable or not matching) keeps the previous one instead of failing handshakes.
        """
        state = {"stamp": self._stamp()}

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            stamp = self._stamp()
            if not stamp or stamp == state["stamp"]:
                return None
            try:
                config = self.load()
            except ConfigError as exc:
                log.warning("TLS files changed but cannot be read yet (%s): keeping the previous ones", exc)
                return None
            state["stamp"] = stamp
            log.info("TLS certificate files changed: new connections get the new certificate")
            return config

        return grpc.dynamic_ssl_server_credentials(self.load(), fetch, require_client_authentication=self.mutual)


@dataclass(frozen=True)
class ClientTls:
    """What a caller trusts (`ca_file`; None: the system roots) and presents (mTLS) when it calls a server."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @classmethod
    def from_env(cls, env: Env) -> ClientTls | None:
        """`TLS_CA_FILE`, `TLS_CLIENT_CERT_FILE` / `_KEY_FILE`; None (plaintext) when all are unset."""
        pair = _pair(env, "TLS_CLIENT_CERT_FILE", "TLS_CLIENT_KEY_FILE")
        ca = env.get("TLS_CA_FILE") or None
        if ca is None and pair is None:
            return None
        settings = cls(ca, *(pair or (None, None)))
        settings.credentials()  # unreadable files stop the start with a clear message
        return settings

    def credentials(self) -> grpc.ChannelCredentials:
        """Read the files now: a channel made later (after a rotation) presents and trusts the new ones."""
        root = _read(self.ca_file, "TLS CA") if self.ca_file else None
        key = _read(self.key_file, "TLS client key") if self.key_file else None
        chain = _read(self.cert_file, "TLS client certificate") if self.cert_file else None
        return grpc.ssl_channel_credentials(root_certificates=root, private_key=key, certificate_chain=chain)


def channel(address: str, tls: ClientTls | None, **kwargs: object) -> grpc.aio.Channel:
    """A grpc.aio channel to `address`: TLS with `tls`, plaintext without; calls on it carry the current
    trace on (when tracing is on), so a download server's calls to the auth server join the caller's trace."""
    if "interceptors" not in kwargs and (interceptors := tracing.client_interceptors()):
        kwargs["interceptors"] = interceptors
    if tls is None:
        return grpc.aio.insecure_channel(address, **kwargs)  # type: ignore[arg-type]
    return grpc.aio.secure_channel(address, tls.credentials(), **kwargs)  # type: ignore[arg-type]
