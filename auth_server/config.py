"""AuthSettings: every knob of the auth server, read from the environment and validated once at start."""

from __future__ import annotations

from dataclasses import dataclass, field

from auth_server.adapters.hashing import HashQueueLimits, default_hash_workers
from auth_server.domain.users import check_registration, normalise_email
from auth_server.throttle import ThrottlePolicy
from mediadl_common.config import ConfigError, Env, JwtSettings, default_sqlite_url, service_token_from_env
from mediadl_common.errors import Validator
from mediadl_common.keys import SigningKey, load_signing_keys
from mediadl_common.log import LogSettings
from mediadl_common.peer import TrustedProxies, parse_networks
from mediadl_common.tls import ServerTls

# bcrypt's own bounds: below 4 it refuses to hash, above 31 the cost overflows.
MIN_BCRYPT_ROUNDS, MAX_BCRYPT_ROUNDS = 4, 31
SUPERUSER_VARIABLES = ("AUTH_FIRST_SUPERUSER_EMAIL", "AUTH_FIRST_SUPERUSER_USERNAME", "AUTH_FIRST_SUPERUSER_PASSWORD")


@dataclass(frozen=True)
class FirstSuperuser:
    """The account created at start-up when it does not exist yet. The password never appears in repr()."""

    email: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class AuthSettings:
    """Validated settings; secrets (JWT key, database URL that may hold a password) are kept out of repr()."""

    jwt: JwtSettings
    database_url: str = field(repr=False)
    grpc_addr: str = "127.0.0.1:50051"
    access_token_ttl_seconds: int = 30 * 60
    refresh_token_ttl_seconds: int = 7 * 24 * 3600
    bcrypt_rounds: int = 12
    first_superuser: FirstSuperuser | None = None
    log: LogSettings = field(default_factory=LogSettings)
    shutdown_grace_seconds: float = 10.0
    db_pool_size: int = 8
    metrics_addr: str | None = None
    # EdDSA/RS256 only: every key of JWT_PRIVATE_KEY_FILE; the last signs, all are published by GetJwks.
    signing_keys: tuple[SigningKey, ...] = field(default=(), repr=False)
    login_throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    hash_workers: int = field(default_factory=default_hash_workers)
    hash_queue: HashQueueLimits = field(default_factory=HashQueueLimits)
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    # The bearer secret download servers present to ListRevocations (None: nobody may call it).
    service_token: str | None = field(default=None, repr=False)
    revocation_poll_seconds: float = 1.0
    tls: ServerTls | None = None

    @classmethod
    def from_env(cls, env: Env) -> AuthSettings:
        """Build settings from `env`, raising ConfigError (one line) on the first bad value."""
        jwt = JwtSettings.from_env(env)
        return cls(
            jwt=jwt,
            database_url=database_url_from_env(env),
            grpc_addr=env.string("AUTH_GRPC_ADDR", "127.0.0.1:50051"),
            access_token_ttl_seconds=60 * env.integer("JWT_ACCESS_TOKEN_EXPIRE_MINUTES", 30, minimum=1),
            refresh_token_ttl_seconds=24 * 3600 * env.integer("JWT_REFRESH_TOKEN_EXPIRE_DAYS", 7, minimum=1),
            bcrypt_rounds=env.integer("AUTH_BCRYPT_ROUNDS", 12, minimum=MIN_BCRYPT_ROUNDS, maximum=MAX_BCRYPT_ROUNDS),
            first_superuser=_first_superuser(env),
            log=LogSettings.from_env(env),
            shutdown_grace_seconds=env.number("AUTH_SHUTDOWN_GRACE_SECONDS", 10.0, minimum=0.0),
            db_pool_size=env.integer("AUTH_DB_POOL_SIZE", 8, minimum=1, maximum=64),
            metrics_addr=env.get("AUTH_METRICS_ADDR"),
            signing_keys=_signing_keys(jwt),
            login_throttle=_login_throttle(env),
            hash_workers=env.integer("AUTH_HASH_WORKERS", default_hash_workers(), minimum=1, maximum=64),
            hash_queue=_hash_queue(env),
            trusted_proxies=_trusted_proxies(env),
            service_token=service_token_from_env(env),
            revocation_poll_seconds=env.number("AUTH_REVOCATION_POLL_SECONDS", 1.0, minimum=0.1),
            tls=ServerTls.from_env(env, "AUTH"),
        )


def database_url_from_env(env: Env) -> str:
    """AUTH_DATABASE_URL, or the embedded SQLite file; `migrate` needs only this, not the JWT key."""
    return env.string("AUTH_DATABASE_URL", default_sqlite_url("auth.db"))


def _hash_queue(env: Env) -> HashQueueLimits:
    default = HashQueueLimits()
    return HashQueueLimits(
        per_client=env.integer("AUTH_HASH_PER_CLIENT", default.per_client, minimum=1),
        client_queue=env.integer("AUTH_HASH_CLIENT_QUEUE", default.client_queue, minimum=0),
        queue_limit=env.integer("AUTH_HASH_QUEUE_LIMIT", default.queue_limit, minimum=1),
    )


def _trusted_proxies(env: Env) -> TrustedProxies:
    try:
        return TrustedProxies(parse_networks(env.get("AUTH_TRUSTED_PROXIES") or ""))
    except ValueError as exc:
        raise ConfigError(f"AUTH_TRUSTED_PROXIES: {exc}") from None


def _login_throttle(env: Env) -> ThrottlePolicy:
    default = ThrottlePolicy()
    base = env.number("AUTH_LOGIN_BASE_DELAY_SECONDS", default.base_delay_seconds, minimum=0.001)
    ceiling = env.number("AUTH_LOGIN_MAX_DELAY_SECONDS", default.max_delay_seconds, minimum=0.001)
    if ceiling < base:
        raise ConfigError(f"AUTH_LOGIN_MAX_DELAY_SECONDS ({ceiling:g}) must be at least AUTH_LOGIN_BASE_DELAY_SECONDS")
    return ThrottlePolicy(
        max_failures=env.integer("AUTH_LOGIN_MAX_FAILURES", default.max_failures, minimum=0),
        peer_max_failures=env.integer("AUTH_LOGIN_PEER_MAX_FAILURES", default.peer_max_failures, minimum=0),
        account_max_failures=env.integer("AUTH_LOGIN_ACCOUNT_MAX_FAILURES", default.account_max_failures, minimum=0),
        register_max_per_client=env.integer("AUTH_REGISTER_MAX_PER_CLIENT", default.register_max_per_client, minimum=0),
        window_seconds=env.number("AUTH_LOGIN_WINDOW_SECONDS", default.window_seconds, minimum=1.0),
        base_delay_seconds=base,
        max_delay_seconds=ceiling,
    )


def _signing_keys(jwt: JwtSettings) -> tuple[SigningKey, ...]:
    if not jwt.asymmetric:
        return ()
    if not jwt.private_key_file:
        raise ConfigError(f"JWT_PRIVATE_KEY_FILE must be set: the auth server signs {jwt.algorithm} tokens with it")
    return tuple(load_signing_keys(jwt.private_key_file, jwt.algorithm))


def _first_superuser(env: Env) -> FirstSuperuser | None:
    values = {name: env.get(name) for name in SUPERUSER_VARIABLES}
    missing = [name for name, value in values.items() if value is None]
    if len(missing) == len(SUPERUSER_VARIABLES):
        return None
    if missing:
        # Half a superuser is a typo, not a choice: refuse rather than start without the account.
        raise ConfigError(f"{', '.join(missing)} must be set too (the first superuser needs all three)")
    email, username, password = (values[name] or "" for name in SUPERUSER_VARIABLES)
    check = Validator()
    check_registration(check, email=normalise_email(email), username=username, password=password, full_name="")
    if check.violations:
        # Caught here, not at the first start-up that tries to create the account.
        first = check.violations[0]
        raise ConfigError(f"AUTH_FIRST_SUPERUSER_{first.field.upper()} {first.description}")
    return FirstSuperuser(email=email, username=username, password=password)
