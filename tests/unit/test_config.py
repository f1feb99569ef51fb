"""Configuration: flags over SIGHTD_* environment over the TOML file over defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sightd import config


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults(tmp_path: Path) -> None:
    settings = config.load_settings(_args("--data-dir", str(tmp_path)), environ={})
    assert (settings.grpc_port, settings.http_port, settings.allow_url_host) == (50051, 8080, ())
    assert settings.max_message_bytes == 64 * 1024 * 1024
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{tmp_path / 'sightd.db'}"
    assert settings.blob_dir == tmp_path / "blobs"


def test_precedence_flag_then_environment_then_file(tmp_path: Path) -> None:
    file = tmp_path / "sightd.toml"
    file.write_text('grpc_port = 7001\nhttp-port = 7002\nmax_message_bytes = "128MiB"\nlog_level = "debug"\n')
    environ = {"SIGHTD_CONFIG": str(file), "SIGHTD_HTTP_PORT": "7102", "SIGHTD_GRPC_PORT": "7101"}
    settings = config.load_settings(_args("--grpc-port", "7201"), environ=environ)
    assert (settings.grpc_port, settings.http_port) == (7201, 7102)
    assert settings.max_message_bytes == 128 * 1024 * 1024
    assert settings.log_level == "DEBUG"


def test_repeatable_allow_url_host_from_flags_environment_and_file(tmp_path: Path) -> None:
    flags = _args("--allow-url-host", "127.0.0.1", "--allow-url-host", "10.0.0.0/8,images.internal")
    assert config.load_settings(flags, environ={}).allow_url_host == (
        "127.0.0.1",
        "10.0.0.0/8",
        "images.internal",
    )
    environ = {"SIGHTD_ALLOW_URL_HOST": "127.0.0.1, ::1"}
    assert config.load_settings(_args(), environ=environ).allow_url_host == ("127.0.0.1", "::1")
    file = tmp_path / "c.toml"
    file.write_text('[sightd]\nallow_url_host = ["192.168.0.0/16"]\n')
    assert config.load_settings(_args("--config", str(file)), environ={}).allow_url_host == (
        "192.168.0.0/16",
    )


def test_database_urls_get_their_async_drivers() -> None:
    assert config.async_database_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert config.async_database_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert config.async_database_url("sqlite:////var/lib/s.db") == "sqlite+aiosqlite:////var/lib/s.db"
    with pytest.raises(config.ConfigError):
        config.async_database_url("mysql://u@h/db")
    with pytest.raises(config.ConfigError) as refused:
        config.async_database_url("sightd:s3cret-pw@db.internal/sightd")
    assert "s3cret" not in str(refused.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1048576", 1 << 20), ("64MiB", 64 << 20), ("2GB", 2_000_000_000), ("1.5KiB", 1536)],
)
def test_sizes(text: str, expected: int) -> None:
    assert config.parse_size(text) == expected


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (("--grpc-port", "70000"), {}, "not a port"),
        (("--grpc-port", "abc"), {}, "--grpc-port"),
        ((), {"SIGHTD_MAX_MESSAGE_BYTES": "1MiB"}, "minimum"),
        ((), {"SIGHTD_REFLECTION": "maybe"}, "boolean"),
        ((), {"SIGHTD_LOG_FORMAT": "xml"}, "json or text"),
        (("--rest-task-wait-seconds", "6"), {}, "above 5 s"),
        (("--rest-task-wait-seconds", "-1"), {}, "minimum"),
    ],
)
def test_bad_values_are_reported_with_their_origin(
    argv: tuple[str, ...], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(config.ConfigError, match=message):
        config.load_settings(_args(*argv), environ=environ)


def test_unknown_file_setting_is_an_error(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("grcp_port = 1\n")
    with pytest.raises(config.ConfigError, match="grcp_port"):
        config.load_settings(_args("--config", str(file)), environ={})


def test_tls_needs_a_certificate_and_its_key(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="tls_cert and tls_key go together"):
        config.load_settings(_args("--tls-cert", "cert.pem"), environ={})
    with pytest.raises(config.ConfigError, match="mutual TLS"):
        config.load_settings(_args("--tls-client-ca", "ca.pem"), environ={})
    settings = config.load_settings(_args("--tls-cert", "c.pem", "--tls-key", "k.pem"), environ={})
    assert (settings.tls_cert, settings.tls_key) == (Path("c.pem"), Path("k.pem"))
    assert config.load_settings(_args(), environ={}).host == "127.0.0.1"


def test_the_instance_id_survives_a_restart_in_the_same_data_dir(tmp_path: Path) -> None:
    first = config.load_settings(_args("--data-dir", str(tmp_path / "a")), environ={})
    again = config.load_settings(_args("--data-dir", str(tmp_path / "a")), environ={})
    other = config.load_settings(_args("--data-dir", str(tmp_path / "b")), environ={})
    assert first.resolved_instance_id == again.resolved_instance_id != other.resolved_instance_id
    named = config.load_settings(_args("--instance-id", "replica-7"), environ={})
    assert named.resolved_instance_id == "replica-7"
