"""Settings read from ``MADRASA_*`` environment variables into one typed structure.

A bad value stops start-up with a single line that names the variable
(:class:`ConfigError`); the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import msgspec

PREFIX = "MADRASA_"


class ConfigError(Exception):
    """A configuration value is missing or malformed; the message names the variable."""


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    """Every runtime setting of a madrasa process."""

    #: Folder for the embedded SQLite file, local storage and demo accounts.
    data_dir: Path = Path("var")
    #: ``sqlite:///path`` or ``postgresql://user@host:port/db``; the app role on PostgreSQL.
    database_url: str = ""
    #: Owner role URL used to run migrations on PostgreSQL (defaults to ``database_url``).
    migration_database_url: str = ""
    #: Streaming replicas (``postgresql://`` URLs of the app role, comma separated) that serve the reads routes mark
    #: ``opt={"replica": True}``: families' and pupils' pages and heavy reports (``core/replicas.py``).
    replica_urls: tuple[str, ...] = ()
    #: A replica whose replay lags the primary by more than this many seconds is skipped until it catches up.
    replica_max_lag_seconds: float = 5.0
    #: After a request that wrote (a non-GET that committed), the same browser or client reads from the primary
    #: for this many seconds (a signed cookie), so it sees its own change.
    replica_read_your_writes_seconds: int = 5
    #: A replica that failed (refused, lost, timed out) is left alone for this many seconds, then tried again.
    replica_retry_seconds: int = 30
    db_pool_min: int = 2
    db_pool_max: int = 10
    #: Seconds a request waits for a database connection (a free one, or a new one to connect) before it is
    #: answered 503: with the database down or every connection busy, nothing hangs.
    db_acquire_timeout: float = 10.0
    secret_key: str = ""
    debug: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    #: Portals answer on ``<slug>.<base_domain>``.
    base_domain: str = "madrasa.localhost"
    #: Names of third-party plugins (entry-point names in ``madrasa.plugins``) allowed to load.
    allowed_plugins: tuple[str, ...] = ()
    #: ``fs``, ``s3``, or a backend a plugin provides through ``madrasa_backends``.
    storage_backend: str = "fs"
    storage_root: Path | None = None
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "madrasa"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    max_upload_bytes: int = 10 * 1024 * 1024
    #: Onboarding files (a region's pupils) have their own cap.
    onboarding_max_bytes: int = 200 * 1024 * 1024
    #: Extra folder searched first for the report-card fonts.
    font_dir: Path | None = None
    #: Private folder for prepared (subset) fonts; the user's cache folder by default.
    font_cache: Path | None = None
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 24 * 3600
    session_ttl: int = 12 * 3600
    #: Failed logins of one (account, address) pair, or of one account's known device, before each further
    #: attempt of that pair waits (``core/identity.py``); no account is ever locked for everyone.
    login_max_failures: int = 5
    #: How long a failed login counts for the delays, the address ceiling and the alerts.
    login_window_seconds: int = 3600
    smtp_host: str = ""
    smtp_port: int = 25
    mail_from: str = "no-reply@madrasa.localhost"
    #: Outgoing SMS (``core/sms.py``): ``log`` logs messages; a plugin adds a real gateway under its own name.
    sms_backend: str = "log"
    #: ``test`` lowers argon2id's cost so a test suite can log in thousands of times; never in production.
    password_hash_profile: Literal["standard", "test"] = "standard"
    #: argon2id cost of new password hashes (``core/passwords.py``); OWASP's guidance by default. Hashes made
    #: with other parameters are upgraded at the next login. ``docs/security.md`` gives the measured times.
    argon2_memory_kib: int = 19456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    #: Password hashes computed at once, in worker threads; further logins wait (0: the CPU count).
    password_hash_workers: int = 0
    #: Lifetime of a session opened with "remember this device" (browser), or of an app's refresh token
    #: family asked with ``remember``; revocable from the devices page.
    remembered_session_ttl: int = 90 * 24 * 3600
    #: Background jobs: ``inprocess`` (the embedded default) or ``saq`` (Redis and ``madrasa worker``).
    job_backend: Literal["inprocess", "saq"] = "inprocess"
    redis_url: str = "redis://127.0.0.1:6379/0"
    job_queue_name: str = "madrasa"
    #: The shared cache (``core/shared_cache.py``): empty keeps entries in each process; ``redis://…`` shares them;
    #: ``none`` keeps nothing.
    cache_url: str = ""
    #: Prefix of every shared-cache key in Redis (deployments sharing one Redis pick different ones).
    cache_prefix: str = "madrasa:cache:"
    #: How processes tell each other to drop cached tenants, grants, module switches and sessions:
    #: ``auto`` (Redis pub/sub with ``job_backend=saq``, else PostgreSQL ``LISTEN/NOTIFY`` on PostgreSQL, else
    #: ``local``: one process), or one of ``local``, ``postgres``, ``redis``.
    invalidation_backend: Literal["auto", "local", "postgres", "redis"] = "auto"
    job_concurrency: int = 2
    job_timeout: int = 3600
    #: How often ``madrasa worker`` hands jobs still ``queued`` in the table to Redis again (a Redis that
    #: restarted empty forgot them).
    job_requeue_seconds: int = 60
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    #: Public base URL of the deployment (``https://madrasa.example.ma``): links in mail are built from it (or a
    #: tenant's registered host), never from request headers. Defaults to ``http://127.0.0.1:<port>``; required on
    #: PostgreSQL outside debug mode when mail really leaves (``MADRASA_SMTP_HOST``).
    public_url: str = ""
    #: Addresses or networks (CIDR) of the reverse proxies whose ``X-Forwarded-For``/``-Proto`` are believed (none).
    trusted_proxies: tuple[str, ...] = ()
    #: First wait after ``login_max_failures`` failures of a pair; it doubles with each further failure.
    login_delay_seconds: int = 1
    #: The longest wait between two attempts of one pair.
    login_max_delay_seconds: int = 900
    #: Failed logins from one address (a school's NAT: all its accounts) within the window after which that
    #: address's attempts from unknown devices are spaced, one per ``window / ceiling`` seconds (a slowdown).
    login_address_ceiling: int = 500
    #: Failed logins of one account within the window that raise an alert (an address alerts at its ceiling).
    login_alert_failures: int = 20
    #: Bearer token that ``/metrics`` on the application port asks for; without it ``/metrics`` answers 404 there
    #: (outside debug mode).
    metrics_token: str = ""
    #: A separate port on ``host`` where prometheus_client's own server publishes the metrics (0: none).
    metrics_port: int = 0
    #: Bulk exports of personal data (routes marked ``bulk_export``) one account may make per hour.
    bulk_exports_per_hour: int = 20

    @property
    def dialect(self) -> Literal["sqlite", "postgres"]:
        """Which database family ``database_url`` points at."""
        return "sqlite" if self.database_url.startswith("sqlite") else "postgres"

    @property
    def sqlite_path(self) -> Path:
        """File of the embedded database."""
        return Path(self.database_url.removeprefix("sqlite:///"))

    @property
    def storage_path(self) -> Path:
        """Root folder of the file-system storage backend."""
        return self.storage_root or self.data_dir / "files"


_FIELDS = {f.name: f for f in msgspec.structs.fields(Settings)}


def _convert(name: str, raw: str, annotation: object) -> object:
    text = raw.strip()
    if annotation in (bool, "bool"):
        lowered = text.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"{PREFIX}{name.upper()}: expected true or false, got {raw!r}")
    if annotation in (int, "int"):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{PREFIX}{name.upper()}: expected a whole number, got {raw!r}") from None
    if annotation is Path or annotation == Path | None:
        return Path(text) if text else None
    if str(annotation).startswith("tuple"):
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return text


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build :class:`Settings` from the environment; ``overrides`` win over the environment."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    hints = {f.name: f.type for f in msgspec.structs.fields(Settings)}
    for name in _FIELDS:
        key = PREFIX + name.upper()
        if key in env:
            values[name] = _convert(name, env[key], hints[name])
    values.update(overrides)
    try:
        settings = msgspec.convert(values, Settings, strict=False, dec_hook=_decode_path)
    except msgspec.ValidationError as exc:
        # msgspec says "Expected `int`, got `str` - at `$.port`": map the path to the variable.
        message = str(exc)
        field = message.rsplit("$.", 1)[-1].rstrip("`") if "$." in message else ""
        variable = PREFIX + field.split(".")[0].split("[")[0].upper() if field else "MADRASA_*"
        raise ConfigError(f"{variable}: {message.split(' - at ')[0]}") from None
    return _complete(settings)


def _decode_path(type_: type, obj: object) -> object:
    if type_ is Path and isinstance(obj, (str, Path)):
        return Path(obj)
    raise NotImplementedError


def _complete(settings: Settings) -> Settings:
    changes: dict[str, object] = {}
    if not settings.database_url:
        changes["database_url"] = f"sqlite:///{settings.data_dir / 'madrasa.sqlite3'}"
    url = changes.get("database_url", settings.database_url)
    assert isinstance(url, str)
    if not (url.startswith("sqlite:///") or url.startswith(("postgresql://", "postgres://"))):
        raise ConfigError(f"{PREFIX}DATABASE_URL: expected sqlite:///… or postgresql://…, got {url!r}")
    if not settings.secret_key:
        if not settings.debug and url.startswith("postgres"):
            raise ConfigError(f"{PREFIX}SECRET_KEY: required outside debug mode on PostgreSQL")
        changes["secret_key"] = _local_secret(settings.data_dir)
    elif len(settings.secret_key) < 32:
        raise ConfigError(f"{PREFIX}SECRET_KEY: must be at least 32 characters")
    if settings.storage_backend == "s3" and not settings.s3_endpoint:
        raise ConfigError(f"{PREFIX}S3_ENDPOINT: required when MADRASA_STORAGE_BACKEND=s3")
    if not 1 <= settings.port <= 65535:
        raise ConfigError(f"{PREFIX}PORT: must be between 1 and 65535, got {settings.port}")
    for name in (
        "login_max_failures",
        "login_window_seconds",
        "login_delay_seconds",
        "login_max_delay_seconds",
        "login_address_ceiling",
        "login_alert_failures",
        "bulk_exports_per_hour",
    ):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{PREFIX}{name.upper()}: must be at least 1")
    if not 0 <= settings.metrics_port <= 65535 or (settings.metrics_port and settings.metrics_port == settings.port):
        raise ConfigError(f"{PREFIX}METRICS_PORT: must be between 1 and 65535 and not MADRASA_PORT (0: none)")
    if settings.metrics_token and len(settings.metrics_token) < 16:
        raise ConfigError(f"{PREFIX}METRICS_TOKEN: must be at least 16 characters")
    if settings.job_concurrency < 1:
        raise ConfigError(f"{PREFIX}JOB_CONCURRENCY: must be at least 1")
    if settings.job_requeue_seconds < 1:
        raise ConfigError(f"{PREFIX}JOB_REQUEUE_SECONDS: must be at least 1")
    if settings.job_backend == "saq" and not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{PREFIX}REDIS_URL: expected redis://…, got {settings.redis_url!r}")
    if settings.cache_url not in ("", "none") and not settings.cache_url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise ConfigError(
            f"{PREFIX}CACHE_URL: expected empty (in-process), none or redis://…, got {settings.cache_url!r}"
        )
    if settings.invalidation_backend == "postgres" and not url.startswith("postgres"):
        raise ConfigError(f"{PREFIX}INVALIDATION_BACKEND: postgres needs a PostgreSQL MADRASA_DATABASE_URL")
    if settings.invalidation_backend == "redis" and not settings.redis_url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise ConfigError(f"{PREFIX}REDIS_URL: expected redis://…, got {settings.redis_url!r}")
    _check_password_cost(settings)
    if settings.remembered_session_ttl < settings.session_ttl:
        raise ConfigError(f"{PREFIX}REMEMBERED_SESSION_TTL: must be at least MADRASA_SESSION_TTL")
    if settings.db_pool_min < 1 or settings.db_pool_max < settings.db_pool_min:
        raise ConfigError(f"{PREFIX}DB_POOL_MAX: must be ≥ MADRASA_DB_POOL_MIN ≥ 1")
    if not 0 < settings.db_acquire_timeout <= 300:
        raise ConfigError(f"{PREFIX}DB_ACQUIRE_TIMEOUT: must be between 0 and 300 seconds")
    _check_replicas(settings, url)
    changes["public_url"] = _public_url(settings, url)
    for proxy in settings.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(f"{PREFIX}TRUSTED_PROXIES: expected addresses or networks, got {proxy!r}") from None
    return msgspec.structs.replace(settings, **changes) if changes else settings


def _check_replicas(settings: Settings, database_url: str) -> None:
    """Replica URLs need PostgreSQL as the primary, and the timings positive values."""
    for replica in settings.replica_urls:
        if not replica.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"{PREFIX}REPLICA_URLS: expected postgresql://… URLs, got {replica!r}")
    if settings.replica_urls and not database_url.startswith("postgres"):
        raise ConfigError(f"{PREFIX}REPLICA_URLS: read replicas need MADRASA_DATABASE_URL on PostgreSQL")
    if not settings.replica_max_lag_seconds > 0:
        raise ConfigError(f"{PREFIX}REPLICA_MAX_LAG_SECONDS: must be more than 0")
    if settings.replica_read_your_writes_seconds < 0:
        raise ConfigError(f"{PREFIX}REPLICA_READ_YOUR_WRITES_SECONDS: must be 0 or more")
    if settings.replica_retry_seconds < 1:
        raise ConfigError(f"{PREFIX}REPLICA_RETRY_SECONDS: must be at least 1")


#: OWASP's weakest argon2id equivalent (7 MiB with 5 passes): memory × passes may not fall below it.
ARGON2_MIN_MEMORY_KIB = 7168
ARGON2_MIN_WORK = 7168 * 5


def _check_password_cost(settings: Settings) -> None:
    """Refuse an argon2id cost below OWASP's guidance, or one the library cannot run."""
    memory, passes, lanes = settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism
    if not 1 <= lanes <= 64:
        raise ConfigError(f"{PREFIX}ARGON2_PARALLELISM: must be between 1 and 64, got {lanes}")
    if not 1 <= passes <= 50:
        raise ConfigError(f"{PREFIX}ARGON2_TIME_COST: must be between 1 and 50, got {passes}")
    if not ARGON2_MIN_MEMORY_KIB <= memory <= 4 * 1024 * 1024:
        raise ConfigError(f"{PREFIX}ARGON2_MEMORY_KIB: must be between 7168 (7 MiB) and 4194304 (4 GiB), got {memory}")
    if memory * passes < ARGON2_MIN_WORK:
        raise ConfigError(
            f"{PREFIX}ARGON2_TIME_COST: {passes} passes over {memory} KiB is below OWASP's minimum "
            f"(memory KiB × passes ≥ {ARGON2_MIN_WORK}, e.g. 19456 × 2)"
        )
    if not 0 <= settings.password_hash_workers <= 256:
        raise ConfigError(f"{PREFIX}PASSWORD_HASH_WORKERS: must be between 0 (the CPU count) and 256")


def _public_url(settings: Settings, database_url: str) -> str:
    """The public base URL without a trailing slash (``http://127.0.0.1:<port>`` when unset and allowed)."""
    name = f"{PREFIX}PUBLIC_URL"
    value = settings.public_url.strip().rstrip("/")
    if not value:
        if settings.smtp_host and not settings.debug and database_url.startswith("postgres"):
            raise ConfigError(f"{name}: required on PostgreSQL outside debug mode when MADRASA_SMTP_HOST is set")
        return f"http://127.0.0.1:{settings.port}"
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment or "@" in value:
        raise ConfigError(f"{name}: expected http(s)://host[:port][/path], got {settings.public_url!r}")
    return value


def _local_secret(data_dir: Path) -> str:
    """A per-installation secret kept in the data folder (embedded default only)."""
    path = data_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value
