"""DashboardSettings: where the dashboard listens, which gRPC servers it talks to, and its cookie key."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from mediadl_common.config import MIN_SECRET_BYTES, ConfigError, Env
from mediadl_common.log import LogSettings
from mediadl_common.tls import ClientTls

DEFAULT_ADDR = "127.0.0.1:8080"
DEFAULT_AUTH_ADDR = "127.0.0.1:50051"
DEFAULT_DOWNLOAD_ADDR = "127.0.0.1:50052"


@dataclass(frozen=True)
class DashboardSettings:
    """Validated settings. The session secret never appears in repr().

    Without DASHBOARD_SESSION_SECRET a random key is made at each start, so a restart signs everyone out
    (their sessions lived in memory anyway; the key only has to outlive the process that made the cookies).
    """

    session_secret: bytes = field(repr=False)
    host: str = "127.0.0.1"
    port: int = 8080
    auth_addr: str = DEFAULT_AUTH_ADDR
    download_addr: str = DEFAULT_DOWNLOAD_ADDR
    # Secure cookies need HTTPS; the default listener is plain HTTP on loopback, so it is opt-in.
    cookie_secure: bool = False
    # A session ends when its refresh token does, or after this long without a request, whichever is first.
    idle_timeout_seconds: float = 12 * 3600.0
    grpc_timeout_seconds: float = 10.0
    shutdown_grace_seconds: float = 5.0
    log: LogSettings = field(default_factory=LogSettings)
    secret_is_random: bool = False
    # TLS to the gRPC servers: what the dashboard trusts and presents (mTLS).
    tls: ClientTls | None = None

    @classmethod
    def from_env(cls, env: Env) -> DashboardSettings:
        """Build settings from `env`, raising ConfigError (one line) on the first bad value."""
        host, port = parse_addr(env.string("DASHBOARD_ADDR", DEFAULT_ADDR), "DASHBOARD_ADDR")
        raw_secret = env.get("DASHBOARD_SESSION_SECRET")
        if raw_secret is not None and len(raw_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"DASHBOARD_SESSION_SECRET is too short: it needs at least {MIN_SECRET_BYTES} bytes")
        return cls(
            session_secret=raw_secret.encode() if raw_secret is not None else secrets.token_bytes(32),
            secret_is_random=raw_secret is None,
            host=host,
            port=port,
            # The servers' own variables work too, so one .env serves `make run` whole.
            auth_addr=_client_addr(env, "MEDIADL_AUTH_ADDR", "AUTH_GRPC_ADDR", DEFAULT_AUTH_ADDR),
            download_addr=_client_addr(env, "MEDIADL_DOWNLOAD_ADDR", "DOWNLOAD_GRPC_ADDR", DEFAULT_DOWNLOAD_ADDR),
            cookie_secure=env.flag("DASHBOARD_COOKIE_SECURE", False),
            idle_timeout_seconds=60 * env.number("DASHBOARD_IDLE_TIMEOUT_MINUTES", 720.0, minimum=1.0),
            grpc_timeout_seconds=env.number("DASHBOARD_GRPC_TIMEOUT_SECONDS", 10.0, minimum=0.1),
            shutdown_grace_seconds=env.number("DASHBOARD_SHUTDOWN_GRACE_SECONDS", 5.0, minimum=0.0),
            log=LogSettings.from_env(env),
            tls=ClientTls.from_env(env),
        )


def parse_addr(value: str, name: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [::1]:8080) into its parts; ConfigError naming `name` otherwise."""
    host, sep, port_text = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{name} must look like HOST:PORT (e.g. 127.0.0.1:8080), got {value!r}")
    return host, int(port_text)


def _client_addr(env: Env, own: str, server_side: str, default: str) -> str:
    value = env.get(own) or env.get(server_side) or default
    name = own if env.get(own) else server_side
    host, port = parse_addr(value, name)
    if port == 0:
        raise ConfigError(f"{name} names port 0: the dashboard needs the server's real port")
    # A server bound to every interface is reached on loopback from the same machine.
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
