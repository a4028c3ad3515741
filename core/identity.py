"""Identities, passwords, login throttling, browser sessions and API tokens.

* Passwords: argon2id at the configured cost, hashed in a bounded thread pool (:mod:`core.passwords`);
  a hash made with other parameters is upgraded at the next successful login.
* Throttling (OWASP): failures count per (account, address) pair over a window; past ``login_max_failures``
  each further attempt of the pair waits a doubling, capped delay (429, ``Retry-After``), whatever the password;
  no account is locked for everyone. A login hands out a signed known-device token (HttpOnly cookie, or the
  API's ``device``): the account's failures elsewhere do not slow that device, only its own do. An address past
  ``login_address_ceiling`` (a school's NAT) has its unknown devices' attempts spaced to that average rate.
  The address is the ASGI client's (uvicorn believes ``X-Forwarded-For`` only from trusted proxies). Bursts
  (an address at its ceiling, an account at ``login_alert_failures``) log a warning and count in /metrics.
* Browser sessions: a random cookie whose SHA-256 is stored; each session has a CSRF token.
* API: a short-lived signed access token (JWT, HS256) naming the session, and a refresh token
  that rotates on every use; presenting an already-used refresh token revokes the family.
  Revocation is checked against the session row (cached for a few seconds per process; a logout or
  revocation is published on the ``sessions`` topic, which drops it from every process's cache).
* One-time secrets (a refresh token, a password-reset token) are consumed by a single conditional
  ``UPDATE … RETURNING``: of concurrent uses exactly one matches the row, on both backends.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

import jwt
import msgspec
from argon2 import PasswordHasher

from core.cache import MISSING, TTLCache
from core.config import Settings
from core.db import Database
from core.invalidation import SESSIONS, InvalidationBus
from core.observability import LOGIN_BURSTS
from core.passwords import PasswordPool, hash_workers, make_hasher

log = logging.getLogger("madrasa.identity")

REVOCATION_CACHE_SECONDS = 5.0
THROTTLED = "Too many failed logins; try again later."
#: What the login form says while a login waits (``{seconds}``: the ``Retry-After`` value).
THROTTLED_WAIT = "Too many failed logins; try again in {seconds} seconds."
#: The portal's known-device cookie (the API hands the same value back as ``device``).
DEVICE_COOKIE = "madrasa_device"
DEVICE_TTL = 180 * 24 * 3600
#: Known-device tokens one browser keeps (one per account logged in there), ``~``-separated.
DEVICES_PER_CLIENT = 5
_NO_ATTEMPT = 2**31 - 1  # above every attempt id: all stored attempts count
_DEVICE_TOKEN = re.compile(r"[A-Za-z0-9_-]{16}\.[0-9]{1,12}\.[A-Za-z0-9_-]{24}")
INVALID_RESET = "This reset link is invalid, expired or already used."
_DUMMY_HASH_CACHE: dict[int, str] = {}


class AuthError(Exception):
    """Authentication failed; ``status`` is 401 or 429."""

    def __init__(self, message: str, status: int = 401, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Identity(msgspec.Struct, frozen=True):
    """The logged-in person."""

    id: int
    email: str
    full_name: str
    full_name_ar: str
    locale: str


@dataclass(frozen=True)
class SessionInfo:
    """A verified session: who, which session, which kind, its CSRF token and tenant."""

    identity: Identity
    session_id: str
    kind: str
    csrf_token: str
    tenant_id: int | None


def sha256(value: str) -> str:
    """Hex SHA-256 of a secret, as stored."""
    return hashlib.sha256(value.encode()).hexdigest()


def normalise_email(email: str) -> str:
    """Lower-cased, trimmed e-mail used as the login name."""
    return email.strip().lower()


class IdentityService:
    """Logins, sessions and tokens for one database and secret."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        hasher: PasswordHasher | None = None,
        bus: InvalidationBus | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.hasher = hasher or make_hasher(settings)
        self.bus = bus
        #: Every hash and verification runs here: off the event loop, a bounded number at a time.
        self.passwords = PasswordPool(self.hasher, hash_workers(settings))
        self._session_cache: TTLCache[str, SessionInfo | None] = TTLCache(REVOCATION_CACHE_SECONDS, 50_000)
        #: Verified claims per token, each kept until the token expires.
        self._claims_cache: TTLCache[str, dict[str, Any]] = TTLCache(0, 50_000)
        self._web_keys: dict[str, str] = {}
        if bus is not None:
            bus.subscribe(SESSIONS, self.forget_session)

    def forget_session(self, session_id: object = None) -> None:
        """Drop a session (every session, for ``None``) from this process's cache."""
        if session_id is None:
            self._session_cache.clear()
            self._web_keys.clear()
        elif isinstance(session_id, str):
            self._session_cache.pop(session_id)
            self._session_cache.pop(self._web_keys.pop(session_id, ""))

    def _session_ended(self, session_id: str) -> None:
        if self.bus is None:
            self.forget_session(session_id)
        else:
            self.bus.publish(SESSIONS, session_id)

    # -- passwords ---------------------------------------------------------------------------

    def hash_password(self, password: str) -> str:
        """An argon2id hash of ``password``, in this thread (set-up and scripts; requests use the pool)."""
        return self.hasher.hash(password)

    async def new_password_hash(self, password: str) -> str:
        """An argon2id hash of ``password``, computed in the bounded pool."""
        return await self.passwords.hash(password)

    async def set_password(self, person_id: int, password: str) -> None:
        """Replace a password (caller checks strength and authority)."""
        hashed = await self.passwords.hash(password)
        await self.db.execute("UPDATE person SET password_hash = {} WHERE id = {}", hashed, person_id)

    # -- throttling --------------------------------------------------------------------------

    def device_token(self, email: str) -> str:
        """A new known-device token for an account: ``<nonce>.<expiry>.<signature>`` (HMAC of the secret key)."""
        nonce = secrets.token_urlsafe(12)
        expiry = int(datetime.now(UTC).timestamp()) + DEVICE_TTL
        return f"{nonce}.{expiry}.{self._device_signature(email, nonce, expiry)}"

    def _device_signature(self, email: str, nonce: str, expiry: int) -> str:
        message = f"known-device\0{normalise_email(email)}\0{nonce}\0{expiry}".encode()
        digest = hmac.new(self.settings.secret_key.encode(), message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()

    def known_device(self, email: str, presented: str | None) -> str:
        """The nonce of an unexpired known-device token of ``email`` among those presented, else ``""``."""
        now = datetime.now(UTC).timestamp()
        for token in (presented or "")[:1000].split("~")[:DEVICES_PER_CLIENT]:
            if not _DEVICE_TOKEN.fullmatch(token):
                continue
            nonce, expiry, signature = token.split(".")
            expected = self._device_signature(email, nonce, int(expiry))
            if int(expiry) > now and hmac.compare_digest(signature.encode(), expected.encode()):
                return nonce
        return ""

    def remember_device(self, email: str, presented: str | None) -> str:
        """The known-device value to hand back after a login: a fresh token of this account first, then
        the other accounts' tokens this client already held (at most :data:`DEVICES_PER_CLIENT`)."""
        others = [
            token
            for token in (presented or "")[:1000].split("~")
            if _DEVICE_TOKEN.fullmatch(token) and not self.known_device(email, token)
        ]
        return "~".join([self.device_token(email), *others][:DEVICES_PER_CLIENT])

    async def check_throttle(self, email: str, ip: str, device: str = "") -> None:
        """Raise 429 (``retry_after``: the seconds to wait) while this client must wait before trying again.

        ``device`` is the nonce of a verified known device of the account (see :meth:`known_device`): it waits
        only after its own failures. Otherwise the (account, address) pair waits after its failures, and an
        address past its ceiling spaces its attempts.
        """
        wait = await self.throttle_wait(normalise_email(email), ip, device)
        if wait > 0:
            raise AuthError(THROTTLED, status=429, retry_after=wait)

    async def throttle_wait(self, email: str, ip: str, device: str = "", before: int = _NO_ATTEMPT) -> int:
        """Whole seconds before this account may be tried again from this address or known device (0: now).

        Only attempts stored before the attempt ``before`` count: a login stores its attempt first, so of
        concurrent attempts each sees those that came earlier.
        """
        settings = self.settings
        now = datetime.now(UTC)
        since = now - timedelta(seconds=settings.login_window_seconds)
        if device:
            row = await self.db.fetchrow(
                "SELECT COUNT(*) AS n, MAX(at) AS last FROM login_attempt WHERE email = {} AND device = {} AND at > {} "
                "AND id < {}",
                email,
                device,
                since,
                before,
            )
            return self._backoff((row or {}).get("n"), (row or {}).get("last"), now)
        row = await self.db.fetchrow(
            "SELECT SUM(CASE WHEN email = {} AND device = '' THEN 1 ELSE 0 END) AS n, "
            "MAX(CASE WHEN email = {} AND device = '' THEN at END) AS last, COUNT(*) AS by_ip, MAX(at) AS ip_last "
            "FROM login_attempt WHERE ip = {} AND at > {} AND id < {}",
            email,
            email,
            ip,
            since,
            before,
        )
        row = row or {}
        wait = self._backoff(row.get("n"), row.get("last"), now)
        ceiling = max(1, settings.login_address_ceiling)
        if int(row.get("by_ip") or 0) >= ceiling and row.get("ip_last") is not None:
            spacing = timedelta(seconds=settings.login_window_seconds / ceiling)
            wait = max(wait, _seconds_until(_moment(row["ip_last"]) + spacing, now))
        return wait

    def _backoff(self, failures: int | None, last: Any, now: datetime) -> int:
        """The wait of a pair (or device) with ``failures`` in the window, the last at ``last``."""
        over = int(failures or 0) - self.settings.login_max_failures
        if over < 0 or last is None:
            return 0
        delay = min(self.settings.login_delay_seconds * 2 ** min(over, 30), self.settings.login_max_delay_seconds)
        return _seconds_until(_moment(last) + timedelta(seconds=delay), now)

    async def _record_attempt(self, email: str, ip: str, device: str) -> int:
        """Store an attempt as failed before anything is checked, so concurrent attempts count each other."""
        return await self.db.fetchval(
            "INSERT INTO login_attempt (email, ip, device, at) VALUES ({}, {}, {}, {}) RETURNING id",
            email,
            ip,
            device,
            datetime.now(UTC),
        )

    async def _alert_bursts(self, email: str, ip: str) -> None:
        """After a failure: alert when its address reaches the ceiling or its account the alert threshold."""
        settings = self.settings
        now = datetime.now(UTC)
        row = await self.db.fetchrow(
            "SELECT SUM(CASE WHEN email = {} THEN 1 ELSE 0 END) AS by_account, "
            "SUM(CASE WHEN ip = {} THEN 1 ELSE 0 END) AS by_ip FROM login_attempt WHERE at > {} "
            "AND (email = {} OR ip = {})",
            email,
            ip,
            now - timedelta(seconds=settings.login_window_seconds),
            email,
            ip,
        )
        row = row or {}
        bursts = (
            ("address", int(row.get("by_ip") or 0), max(1, settings.login_address_ceiling), {"ip": ip}),
            ("account", int(row.get("by_account") or 0), settings.login_alert_failures, {"account": email}),
        )
        for kind, count, threshold, subject in bursts:
            if count == threshold:
                LOGIN_BURSTS.labels(kind=kind).inc()
                log.warning(
                    "login burst: %d failed logins within %d s for one %s",
                    count,
                    settings.login_window_seconds,
                    kind,
                    extra={
                        "event": "login_burst",
                        "kind": kind,
                        "failures": count,
                        "window_seconds": settings.login_window_seconds,
                        **subject,
                    },
                )

    async def _forget_failures(self, email: str, ip: str, device: str) -> None:
        """After a successful login: the failures of this pair (or this known device) no longer count."""
        if device:
            await self.db.execute("DELETE FROM login_attempt WHERE email = {} AND device = {}", email, device)
        else:
            await self.db.execute("DELETE FROM login_attempt WHERE email = {} AND ip = {} AND device = ''", email, ip)

    # -- login -------------------------------------------------------------------------------

    async def authenticate(self, email: str, password: str, ip: str, device: str | None = None) -> Identity:
        """Check a password; raises :class:`AuthError` (401, or 429 while throttled).

        ``ip`` is the ASGI client's address; ``device`` the known-device value the client holds, if any.
        """
        email = normalise_email(email)
        ip = ip[:64]
        known = self.known_device(email, device)
        attempt = await self._record_attempt(email, ip, known)
        wait = await self.throttle_wait(email, ip, known, before=attempt)
        if wait > 0:
            await self.db.execute("DELETE FROM login_attempt WHERE id = {}", attempt)
            raise AuthError(THROTTLED, status=429, retry_after=wait)
        row = await self.db.fetchrow(
            "SELECT id, email, full_name, full_name_ar, locale, password_hash, active FROM person WHERE email = {}",
            email,
        )
        stored = row["password_hash"] if row else None
        # argon2id costs tens of milliseconds of CPU (and releases the GIL): it runs in the bounded pool. An
        # unknown account spends the same time on a dummy hash, so it is not revealed.
        if not await self.passwords.verify(stored or await self._dummy_hash(), password) or not stored:
            await self._alert_bursts(email, ip)
            raise AuthError("Wrong e-mail or password.")
        assert row is not None and stored
        if not row["active"]:
            await self.db.execute("DELETE FROM login_attempt WHERE id = {}", attempt)
            raise AuthError("This account is disabled.")
        if self.passwords.needs_rehash(stored):  # made with older parameters: store it at today's cost
            await self.set_password(row["id"], password)
        await self._forget_failures(email, ip, known)  # this attempt's row among them
        return Identity(row["id"], row["email"], row["full_name"], row["full_name_ar"], row["locale"])

    async def _dummy_hash(self) -> str:
        key = id(self.hasher)
        if key not in _DUMMY_HASH_CACHE:
            _DUMMY_HASH_CACHE[key] = await self.passwords.hash(secrets.token_hex(8))
        return _DUMMY_HASH_CACHE[key]

    # -- sessions ----------------------------------------------------------------------------

    async def _create_session(
        self, identity: Identity, kind: str, secret: str, ttl: int, tenant_id: int | None, user_agent: str, ip: str
    ) -> tuple[str, str]:
        session_id = secrets.token_urlsafe(18)
        csrf = secrets.token_urlsafe(24)
        now = datetime.now(UTC)
        await self.db.execute(
            "INSERT INTO auth_session (id, person_id, kind, secret_hash, csrf_token, tenant_id, created_at, "
            "expires_at, user_agent, ip) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            session_id,
            identity.id,
            kind,
            sha256(secret),
            csrf,
            tenant_id,
            now,
            now + timedelta(seconds=ttl),
            user_agent[:300],
            ip[:64],
        )
        return session_id, csrf

    def session_ttl(self, kind: str, remember: bool) -> int:
        """Seconds a new session lives: a remembered device's, else a browser session's or a refresh family's."""
        if remember:
            return self.settings.remembered_session_ttl
        return self.settings.session_ttl if kind == "web" else self.settings.refresh_token_ttl

    async def start_web_session(
        self, identity: Identity, tenant_id: int | None, user_agent: str = "", ip: str = "", remember: bool = False
    ) -> str:
        """Create a browser session (``remember``: a long-lived one, "remember this device"); returns the cookie."""
        cookie = secrets.token_urlsafe(32)
        ttl = self.session_ttl("web", remember)
        await self._create_session(identity, "web", cookie, ttl, tenant_id, user_agent, ip)
        return cookie

    async def web_session(self, cookie: str) -> SessionInfo | None:
        """The live browser session behind a cookie, or ``None`` (cached a few seconds, like API sessions)."""
        key = "web:" + sha256(cookie)
        info = self._session_cache.peek(key)
        if info is MISSING:
            info = self._session_cache.put(key, await self._load_web_session(cookie))
            if info is not None:
                self._web_keys[info.session_id] = key
        return info

    async def _load_web_session(self, cookie: str) -> SessionInfo | None:
        row = await self.db.fetchrow(
            "SELECT s.id AS sid, s.csrf_token, s.tenant_id, s.expires_at, s.revoked_at, p.id, p.email, p.full_name, "
            "p.full_name_ar, p.locale, p.active FROM auth_session s JOIN person p ON p.id = s.person_id "
            "WHERE s.secret_hash = {} AND s.kind = 'web'",
            sha256(cookie),
        )
        if not row or row["revoked_at"] is not None or not row["active"]:
            return None
        if _aware(row["expires_at"]) <= datetime.now(UTC):
            return None
        identity = Identity(row["id"], row["email"], row["full_name"], row["full_name_ar"], row["locale"])
        return SessionInfo(identity, row["sid"], "web", row["csrf_token"], row["tenant_id"])

    async def revoke(self, session_id: str) -> None:
        """End a session (browser or API family) now."""
        await self.db.execute(
            "UPDATE auth_session SET revoked_at = {} WHERE id = {} AND revoked_at IS NULL",
            datetime.now(UTC),
            session_id,
        )
        self._session_ended(session_id)

    async def revoke_all(self, person_id: int) -> None:
        """End every session of a person (after a password change)."""
        rows = await self.db.fetch(
            "UPDATE auth_session SET revoked_at = {} WHERE person_id = {} AND revoked_at IS NULL RETURNING id",
            datetime.now(UTC),
            person_id,
        )
        for r in rows:
            self._session_ended(r["id"])

    # -- API tokens --------------------------------------------------------------------------

    def _access_token(self, identity: Identity, session_id: str, tenant_id: int | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": str(identity.id),
            "sid": session_id,
            "iat": now,
            "exp": now + self.settings.access_token_ttl,
            "typ": "access",
        }
        if tenant_id is not None:
            claims["tid"] = tenant_id
        return jwt.encode(claims, self.settings.secret_key, algorithm="HS256")

    async def issue_tokens(
        self, identity: Identity, tenant_id: int | None, user_agent: str = "", ip: str = "", remember: bool = False
    ) -> dict[str, Any]:
        """A new API session: access and refresh tokens (``remember``: a long-lived refresh family)."""
        secret = secrets.token_urlsafe(32)
        ttl = self.session_ttl("api", remember)
        session_id, _ = await self._create_session(identity, "api", secret, ttl, tenant_id, user_agent, ip)
        return self._token_response(identity, session_id, secret, tenant_id)

    def _token_response(
        self, identity: Identity, session_id: str, secret: str, tenant_id: int | None
    ) -> dict[str, Any]:
        return {
            "access_token": self._access_token(identity, session_id, tenant_id),
            "refresh_token": f"{session_id}.{secret}",
            "token_type": "Bearer",
            "expires_in": self.settings.access_token_ttl,
        }

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        """Rotate a refresh token; reuse of an old one revokes the whole session.

        The rotation is one ``UPDATE`` matching the presented secret, so two concurrent uses of one token
        cannot both succeed: the second finds the secret already replaced and counts as a replay.
        """
        session_id, _, secret = refresh_token.partition(".")
        if not session_id or not secret:
            raise AuthError("Malformed refresh token.")
        new_secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        async with self._atomic():
            claimed = await self.db.fetchrow(
                "UPDATE auth_session SET secret_hash = {} WHERE id = {} AND kind = 'api' AND secret_hash = {} "
                "AND revoked_at IS NULL AND expires_at > {} "
                "AND person_id IN (SELECT id FROM person WHERE active) RETURNING person_id, tenant_id",
                sha256(new_secret),
                session_id,
                sha256(secret),
                now,
            )
            person = None
            if claimed is not None:
                person = await self.db.fetchrow(
                    "SELECT id, email, full_name, full_name_ar, locale FROM person WHERE id = {}", claimed["person_id"]
                )
        if claimed is None or person is None:
            await self._refuse_refresh(session_id, now)
        who = Identity(person["id"], person["email"], person["full_name"], person["full_name_ar"], person["locale"])
        return self._token_response(who, session_id, new_secret, claimed["tenant_id"])

    async def _refuse_refresh(self, session_id: str, now: datetime) -> NoReturn:
        """Say why a refresh token was refused; a live session's wrong (already rotated) secret revokes it."""
        row = await self.db.fetchrow(
            "SELECT s.revoked_at, s.expires_at, p.active FROM auth_session s JOIN person p ON p.id = s.person_id "
            "WHERE s.id = {} AND s.kind = 'api'",
            session_id,
        )
        if not row or row["revoked_at"] is not None or not row["active"]:
            raise AuthError("Refresh token revoked or unknown.")
        if _aware(row["expires_at"]) <= now:
            raise AuthError("Refresh token expired.")
        await self.revoke(session_id)
        raise AuthError("Refresh token already used; the session has been revoked.")

    def _decode(self, token: str) -> dict[str, Any]:
        """Verified claims of a token; a token already verified is looked up, not re-verified, until it expires."""
        hit = self._claims_cache.peek(token)
        if hit is not MISSING:
            return hit
        try:
            claims = jwt.decode(
                token, self.settings.secret_key, algorithms=["HS256"], options={"require": ["exp", "sub", "sid"]}
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("Access token expired.") from None
        except jwt.PyJWTError:
            raise AuthError("Invalid access token.") from None
        return self._claims_cache.put(token, claims, ttl=claims["exp"] - time.time())

    async def verify_access(self, token: str) -> SessionInfo:
        """Check an access token's signature, expiry and session; raises 401 otherwise."""
        claims = self._decode(token)
        if claims.get("typ") != "access":
            raise AuthError("Invalid access token.")
        session = await self._api_session(claims["sid"])
        if session is None or str(session.identity.id) != claims["sub"]:
            raise AuthError("Access token revoked.")
        return session

    async def _api_session(self, session_id: str) -> SessionInfo | None:
        return await self._session_cache.get(session_id, lambda: self._load_api_session(session_id))

    async def _load_api_session(self, session_id: str) -> SessionInfo | None:
        row = await self.db.fetchrow(
            "SELECT s.revoked_at, s.tenant_id, p.id, p.email, p.full_name, p.full_name_ar, p.locale, p.active "
            "FROM auth_session s JOIN person p ON p.id = s.person_id WHERE s.id = {} AND s.kind = 'api'",
            session_id,
        )
        info = None
        if row and row["revoked_at"] is None and row["active"]:
            identity = Identity(row["id"], row["email"], row["full_name"], row["full_name_ar"], row["locale"])
            info = SessionInfo(identity, session_id, "api", "", row["tenant_id"])
        return info

    # -- password reset ----------------------------------------------------------------------

    async def start_password_reset(self, email: str, ttl_seconds: int = 3600) -> tuple[int, str] | None:
        """A one-time reset token for an account (``None`` for an unknown address)."""
        row = await self.db.fetchrow("SELECT id FROM person WHERE email = {} AND active", normalise_email(email))
        if not row:
            return None
        token = secrets.token_urlsafe(32)
        await self.db.execute(
            "INSERT INTO password_reset (person_id, token_hash, expires_at) VALUES ({}, {}, {})",
            row["id"],
            sha256(token),
            datetime.now(UTC) + timedelta(seconds=ttl_seconds),
        )
        return row["id"], token

    async def reset_token_is_live(self, token: str) -> bool:
        """Whether a reset token is known, unused and unexpired (the page shows its form or an error)."""
        if not 10 <= len(token) <= 200:
            return False
        found = await self.db.fetchval(
            "SELECT id FROM password_reset WHERE token_hash = {} AND used_at IS NULL AND expires_at > {}",
            sha256(token),
            datetime.now(UTC),
        )
        return found is not None

    async def finish_password_reset(self, token: str, new_password: str) -> int:
        """Use a reset token once: set the password, void the account's other reset tokens, end every session.

        The token is claimed by one conditional ``UPDATE … RETURNING`` in the same transaction as the new
        password, so of concurrent uses exactly one wins. Returns the person id; raises :class:`AuthError` (400).
        """
        if not await self.reset_token_is_live(token):  # before hashing: a forged token costs no argon2 time
            raise AuthError(INVALID_RESET, status=400)
        hashed = await self.passwords.hash(new_password)
        now = datetime.now(UTC)
        async with self._atomic():
            claimed = await self.db.fetchrow(
                "UPDATE password_reset SET used_at = {} WHERE token_hash = {} AND used_at IS NULL AND expires_at > {} "
                "RETURNING person_id",
                now,
                sha256(token),
                now,
            )
            if claimed is None:
                raise AuthError(INVALID_RESET, status=400)
            person_id = int(claimed["person_id"])
            await self.db.execute(
                "UPDATE password_reset SET used_at = {} WHERE person_id = {} AND used_at IS NULL", now, person_id
            )
            await self.db.execute("UPDATE person SET password_hash = {} WHERE id = {}", hashed, person_id)
            await self.revoke_all(person_id)
        return person_id

    @asynccontextmanager
    async def _atomic(self) -> AsyncIterator[None]:
        """A transaction of its own, or the caller's when one is already open."""
        if self.db.in_transaction():
            yield
            return
        async with self.db.transaction():
            yield


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _moment(value: datetime | str) -> datetime:
    """A stored timestamp (SQLite may return an aggregate's as text) as an aware datetime."""
    return _aware(datetime.fromisoformat(value) if isinstance(value, str) else value)


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(0, math.ceil((moment - now).total_seconds()))


def check_password_strength(password: str) -> str | None:
    """A reason the password is too weak, or ``None``."""
    if len(password) < 10:
        return "must be at least 10 characters"
    if password.isdigit() or password.isalpha():
        return "must mix letters with digits or symbols"
    return None
