"""Links in mail come from ``MADRASA_PUBLIC_URL``; forwarded headers are believed only from trusted proxies."""

from __future__ import annotations

import argparse
import gc
import logging

import pytest
import uvicorn

from core import cli
from core.config import ConfigError, load_settings
from core.mail import LoggingMailer, Mail, make_mailer

PG = {"MADRASA_DATABASE_URL": "postgresql://u@h/db", "MADRASA_SECRET_KEY": "k" * 40}


def settings_of(tmp_path, **env: str):
    return load_settings({"MADRASA_DATA_DIR": str(tmp_path), **env})


def test_public_url_defaults_to_the_local_port_and_is_normalised(tmp_path):
    assert settings_of(tmp_path).public_url == "http://127.0.0.1:8000"
    assert settings_of(tmp_path, MADRASA_PORT="9000").public_url == "http://127.0.0.1:9000"
    configured = settings_of(tmp_path, MADRASA_PUBLIC_URL=" https://madrasa.example.ma/ ")
    assert configured.public_url == "https://madrasa.example.ma"
    # PostgreSQL without real mail, or in debug mode, may keep the default
    assert settings_of(tmp_path, **PG).public_url == "http://127.0.0.1:8000"
    debug = settings_of(tmp_path, **PG, MADRASA_SMTP_HOST="smtp.example.ma", MADRASA_DEBUG="true")
    assert debug.public_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    "env",
    [
        {"MADRASA_PUBLIC_URL": "madrasa.example.ma"},
        {"MADRASA_PUBLIC_URL": "ftp://madrasa.example.ma"},
        {"MADRASA_PUBLIC_URL": "https://madrasa.example.ma/?next=x"},
        {"MADRASA_PUBLIC_URL": "https://user@madrasa.example.ma"},
        {"MADRASA_PUBLIC_URL": "https://madrasa.example.ma:port"},
        {**PG, "MADRASA_SMTP_HOST": "smtp.example.ma"},  # real mail in production needs the public address
    ],
)
def test_a_bad_or_missing_public_url_names_the_variable(tmp_path, env):
    with pytest.raises(ConfigError) as info:
        settings_of(tmp_path, **env)
    assert str(info.value).startswith("MADRASA_PUBLIC_URL:")


def test_trusted_proxies_are_addresses_or_networks(tmp_path):
    assert settings_of(tmp_path).trusted_proxies == ()
    settings = settings_of(tmp_path, MADRASA_TRUSTED_PROXIES="10.0.0.5, 192.168.0.0/16,::1")
    assert settings.trusted_proxies == ("10.0.0.5", "192.168.0.0/16", "::1")
    for bad in ("*", "proxy.example.ma", "10.0.0.0/99"):
        with pytest.raises(ConfigError) as info:
            settings_of(tmp_path, MADRASA_TRUSTED_PROXIES=bad)
        assert str(info.value).startswith("MADRASA_TRUSTED_PROXIES:")


def test_serve_believes_forwarded_headers_only_from_trusted_proxies(tmp_path, monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    monkeypatch.setattr("core.app.create_app", lambda settings: object())
    monkeypatch.setattr(gc, "freeze", lambda: None)
    args = argparse.Namespace(host=None, port=None)
    assert cli.cmd_serve(args, settings_of(tmp_path)) == 0
    assert calls[-1]["proxy_headers"] is False and calls[-1]["forwarded_allow_ips"] == []
    cli.cmd_serve(args, settings_of(tmp_path, MADRASA_TRUSTED_PROXIES="10.0.0.5,172.16.0.0/12"))
    assert calls[-1]["proxy_headers"] is True and calls[-1]["forwarded_allow_ips"] == ["10.0.0.5", "172.16.0.0/12"]


async def _as_seen_by_the_app(settings, client: str) -> tuple[str, str]:
    """The client address and scheme the app sees behind uvicorn configured as ``madrasa serve`` does."""
    seen: dict[str, object] = {}

    async def app(scope, receive, send):
        seen.update(client=scope["client"][0], scheme=scope["scheme"])

    config = uvicorn.Config(app, log_config=None, **cli.proxy_options(settings))
    config.load()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "client": (client, 50000),
        "server": ("127.0.0.1", 8000),
        "headers": [
            (b"host", b"evil.example"),
            (b"x-forwarded-for", b"203.0.113.9"),
            (b"x-forwarded-proto", b"https"),
            (b"x-forwarded-host", b"evil.example"),
        ],
    }
    await config.loaded_app(scope, None, None)
    return seen["client"], seen["scheme"]


async def test_forwarded_headers_from_an_untrusted_peer_change_nothing(tmp_path):
    default = settings_of(tmp_path)
    # uvicorn alone would believe 127.0.0.1: madrasa believes nobody unless told
    assert await _as_seen_by_the_app(default, "127.0.0.1") == ("127.0.0.1", "http")
    trusted = settings_of(tmp_path, MADRASA_TRUSTED_PROXIES="10.0.0.0/8")
    assert await _as_seen_by_the_app(trusted, "127.0.0.1") == ("127.0.0.1", "http")
    assert await _as_seen_by_the_app(trusted, "10.1.2.3") == ("203.0.113.9", "https")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage() + " " + str(getattr(record, "link", "")))


async def test_the_log_shows_a_mails_link_only_in_debug_mode_or_on_sqlite(tmp_path):
    logger = logging.getLogger("madrasa.mail")
    records = _Records()
    logger.addHandler(records)
    level = logger.level
    logger.setLevel(logging.INFO)
    link = "http://127.0.0.1:8000/password-reset/secret-token"
    mail = Mail(to="someone@test.ma", subject="madrasa: reset your password", body=f"{link}\n", link=link)
    try:
        for env, shown in (({}, True), (PG, False), ({**PG, "MADRASA_DEBUG": "true"}, True)):
            mailer = make_mailer(settings_of(tmp_path, **env))
            assert isinstance(mailer, LoggingMailer)
            records.lines.clear()
            await mailer.send(mail)
            assert len(records.lines) == 1
            assert ("secret-token" in records.lines[0]) is shown, (env, records.lines)
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
