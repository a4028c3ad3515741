"""Configuration from MADRASA_* variables: types, defaults, and one clear line per bad value."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.config import ConfigError, load_settings


def test_defaults_are_the_embedded_setup(tmp_path):
    settings = load_settings({"MADRASA_DATA_DIR": str(tmp_path)})
    assert settings.dialect == "sqlite"
    assert settings.sqlite_path == tmp_path / "madrasa.sqlite3"
    assert settings.storage_backend == "fs" and settings.storage_path == tmp_path / "files"
    assert len(settings.secret_key) >= 32
    assert load_settings({"MADRASA_DATA_DIR": str(tmp_path)}).secret_key == settings.secret_key  # kept


def test_values_are_typed(tmp_path):
    settings = load_settings(
        {
            "MADRASA_DATA_DIR": str(tmp_path),
            "MADRASA_PORT": "9000",
            "MADRASA_DEBUG": "yes",
            "MADRASA_ALLOWED_PLUGINS": "example, other ,",
            "MADRASA_STORAGE_BACKEND": "s3",
            "MADRASA_S3_ENDPOINT": "http://127.0.0.1:9000",
        }
    )
    assert settings.port == 9000 and settings.debug is True
    assert settings.allowed_plugins == ("example", "other")
    assert settings.storage_backend == "s3"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MADRASA_PORT": "eighty"}, "MADRASA_PORT"),
        ({"MADRASA_PORT": "70000"}, "MADRASA_PORT"),
        ({"MADRASA_DEBUG": "maybe"}, "MADRASA_DEBUG"),
        ({"MADRASA_STORAGE_BACKEND": "s3"}, "MADRASA_S3_ENDPOINT"),
        ({"MADRASA_DATABASE_URL": "mysql://x/y"}, "MADRASA_DATABASE_URL"),
        ({"MADRASA_DATABASE_URL": "postgresql://u@h/db"}, "MADRASA_SECRET_KEY"),
        ({"MADRASA_SECRET_KEY": "short"}, "MADRASA_SECRET_KEY"),
        ({"MADRASA_LOG_LEVEL": "LOUD"}, "MADRASA_LOG_LEVEL"),
        ({"MADRASA_DB_POOL_MIN": "5", "MADRASA_DB_POOL_MAX": "2"}, "MADRASA_DB_POOL_MAX"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, env, variable):
    with pytest.raises(ConfigError) as info:
        load_settings({"MADRASA_DATA_DIR": str(tmp_path), **env})
    assert str(info.value).startswith(variable + ":")
    assert "\n" not in str(info.value)


def test_cli_stops_with_one_line(tmp_path):
    madrasa = Path(sys.executable).parent / "madrasa"
    result = subprocess.run(
        [str(madrasa), "migrate"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "MADRASA_DATA_DIR": str(tmp_path), "MADRASA_PORT": "eighty"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: MADRASA_PORT: expected a whole number, got 'eighty'"
    ]


def test_an_unknown_backend_names_the_variable(tmp_path):
    """Backends may come from plugins, so the name is checked when the services are built."""
    from core.app import build_services

    for variable, value in (("MADRASA_STORAGE_BACKEND", "ftp"), ("MADRASA_SMS_BACKEND", "pigeon")):
        settings = load_settings({variable: value, "MADRASA_DATA_DIR": str(tmp_path)})
        with pytest.raises(ConfigError, match=variable):
            build_services(settings)


def test_login_limits_must_be_positive(tmp_path):
    for variable in ("MADRASA_LOGIN_MAX_FAILURES", "MADRASA_LOGIN_DELAY_SECONDS", "MADRASA_LOGIN_ADDRESS_CEILING"):
        with pytest.raises(ConfigError, match=variable):
            load_settings({variable: "0", "MADRASA_DATA_DIR": str(tmp_path)})
