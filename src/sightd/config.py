"""sightd's configuration: command-line flags, then ``SIGHTD_*`` environment variables, then a TOML file,
then defaults, in that order of precedence.

Every setting is declared once in ``OPTIONS``; the flag (``--grpc-port``), the environment variable
(``SIGHTD_GRPC_PORT``) and the file key (``grpc_port``, or ``grpc-port``) derive from its name. Sizes accept
unit suffixes (``64MiB``, ``2GiB``, ``500kB``); durations are seconds. docs/configuration.md lists them.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import re
import socket
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "SIGHTD_"
# The longest a REST GET of a task may wait for it: the gateway's calls answer within 7 s (the official
# client reads for 8), and a wait must leave that room.
MAX_REST_TASK_WAIT = 5.0
MiB = 1 << 20


class ConfigError(ValueError):
    """A setting has a value of the wrong type or out of range, or the file has an unknown key."""


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
}


def parse_size(value: str | int) -> int:
    """Bytes of ``"64MiB"``, ``"2GB"``, ``"1048576"`` or an int."""
    if isinstance(value, int):
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", value)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise ConfigError(f"not a size: {value!r} (examples: 1048576, 64MiB, 2GB)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def _parse_bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"not a boolean: {value!r}")


def _parse_list(value: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return tuple(str(item) for item in value)


@dataclass(frozen=True)
class Option:
    """One setting: its name (snake_case), parser, default and help."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    minimum: float | None = None
    repeatable: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sightd"


OPTIONS: tuple[Option, ...] = (
    Option(
        "data_dir",
        Path,
        None,
        "folder of the embedded database, blobs and logs (default: $XDG_DATA_HOME/sightd)",
    ),
    Option(
        "host",
        str,
        "127.0.0.1",
        "address the gRPC, HTTP and metrics servers listen on (0.0.0.0 or :: for every interface)",
    ),
    Option("grpc_port", int, 50051, "gRPC port (0: any free port, printed at start-up)", minimum=0),
    Option("http_port", int, 8080, "port of the REST gateway (v0.7 JSON API; 0: any free port)", minimum=0),
    Option("rest_gateway", _parse_bool, True, "serve the REST gateway (Deepomatic v0.7 JSON) on http_port"),
    Option(
        "rest_task_wait_seconds",
        float,
        0.0,
        "REST: seconds GET /v0.7/tasks/{id} waits for a pending task to finish before answering it as it is "
        f"(0: at once, as v0.7; at most {MAX_REST_TASK_WAIT:g})",
        minimum=0,
    ),
    Option(
        "metrics_port",
        int,
        9464,
        "port of the Prometheus metrics (GET /metrics over HTTP; 0: any free port)",
        minimum=0,
    ),
    Option("tls_cert", Path, None, "PEM certificate chain of the gRPC server: TLS instead of plaintext"),
    Option("tls_key", Path, None, "PEM private key of tls_cert"),
    Option(
        "tls_client_ca",
        Path,
        None,
        "PEM CA certificates: clients must present a certificate they signed (mutual TLS)",
    ),
    Option(
        "database_url",
        str,
        "",
        "SQLAlchemy URL of the metadata and task store; empty: SQLite in "
        "the data dir. postgresql://user@host/db uses PostgreSQL (asyncpg)",
    ),
    Option(
        "allow_url_host",
        _parse_list,
        (),
        "host name, address or CIDR network that URL inputs may "
        "reach even though it is loopback, private or link-local (repeatable)",
        repeatable=True,
    ),
    Option("api_key", str, "", "API key created at first start instead of a random one (embedded mode)"),
    Option("reflection", _parse_bool, True, "serve gRPC server reflection"),
    Option(
        "max_message_bytes", parse_size, 64 * MiB, "largest gRPC message received or sent", minimum=4 * MiB
    ),
    Option("max_upload_bytes", parse_size, 2048 * MiB, "largest file uploaded with a network", minimum=1),
    Option("max_image_bytes", parse_size, 32 * MiB, "largest encoded image (inline or fetched)", minimum=1),
    Option("url_timeout", float, 10.0, "seconds a URL input may take to fetch, all of it", minimum=0.001),
    Option("url_max_redirects", int, 3, "redirects followed when fetching a URL input", minimum=0),
    Option(
        "url_fetches_per_tenant",
        int,
        4,
        "URL inputs of one tenant fetched at once (more wait, then RESOURCE_EXHAUSTED)",
        minimum=1,
    ),
    Option("task_ttl", float, 7 * 86400.0, "seconds a finished task is kept", minimum=1),
    Option(
        "task_max_attempts", int, 3, "runs of a task interrupted by restarts before it is failed", minimum=1
    ),
    Option(
        "task_poll_interval",
        float,
        0.5,
        "seconds between store reads of a waiting WaitTask (tasks finished by another replica)",
        minimum=0.01,
    ),
    Option("max_wait", float, 600.0, "longest WaitTask, in seconds", minimum=0.01),
    Option(
        "task_timeout",
        float,
        600.0,
        "seconds a task may take, waiting for room in the queues included, before it fails with "
        "DEADLINE_EXCEEDED",
        minimum=0.01,
    ),
    Option(
        "max_running_tasks",
        int,
        1024,
        "tasks one instance holds at once, running or waiting for the runtime (more: Infer answers "
        "RESOURCE_EXHAUSTED)",
        minimum=1,
    ),
    Option(
        "task_lease",
        float,
        60.0,
        "seconds after which the pending tasks of an instance that stopped renewing them (it died) are "
        "run by another",
        minimum=1,
    ),
    Option(
        "instance_id",
        str,
        "",
        "name of this instance, owner of the tasks it runs (default: host name and data dir; give each "
        "replica sharing a host and a data dir its own)",
    ),
    Option("public_models", _parse_bool, True, "serve the public model zoo (built at start-up when missing)"),
    Option("zoo_dir", Path, None, "folder of the built zoo (default: <cache>/models, see docs/zoo.md)"),
    Option(
        "queue_depth",
        int,
        256,
        "requests queued per recognition version before RESOURCE_EXHAUSTED",
        minimum=1,
    ),
    Option("max_batch", int, 8, "most images in one inference batch", minimum=1),
    Option(
        "cpu_max_batch",
        int,
        1,
        "most images in one inference batch of a model running on the CPU (measured: batching costs time "
        "per image there; docs/runtime.md)",
        minimum=1,
    ),
    Option("max_batch_delay_us", int, 0, "microseconds a batch waits for more images", minimum=0),
    Option("inference_workers", int, 2, "inference batches that run at once (docs/runtime.md)", minimum=1),
    Option(
        "intra_op_threads",
        int,
        0,
        "ONNX Runtime threads per inference run (0: the cores shared out among the inference workers)",
        minimum=0,
    ),
    Option("session_cache_bytes", parse_size, 4096 * MiB, "memory the loaded models may take", minimum=1),
    Option("keepalive_time_ms", int, 60_000, "milliseconds between server keepalive pings", minimum=1),
    Option("keepalive_timeout_ms", int, 20_000, "milliseconds to wait for a keepalive ack", minimum=1),
    Option(
        "keepalive_min_ping_interval_ms",
        int,
        10_000,
        "shortest interval accepted between client pings",
        minimum=1,
    ),
    Option(
        "max_connection_age_ms",
        int,
        0,
        "milliseconds before a connection is gracefully closed (0: "
        "never; behind a load balancer this spreads clients)",
        minimum=0,
    ),
    Option("drain_seconds", float, 30.0, "on SIGTERM: seconds in-flight calls get to finish", minimum=0),
    Option("log_format", str, "json", "json or text"),
    Option("log_level", str, "INFO", "DEBUG, INFO, WARNING or ERROR"),
)
_BY_NAME = {option.name: option for option in OPTIONS}


@dataclass(frozen=True)
class Settings:
    """The resolved configuration. Field names are the option names."""

    data_dir: Path
    host: str
    grpc_port: int
    http_port: int
    rest_gateway: bool
    rest_task_wait_seconds: float
    metrics_port: int
    tls_cert: Path | None
    tls_key: Path | None
    tls_client_ca: Path | None
    database_url: str
    allow_url_host: tuple[str, ...]
    api_key: str
    reflection: bool
    max_message_bytes: int
    max_upload_bytes: int
    max_image_bytes: int
    url_timeout: float
    url_max_redirects: int
    url_fetches_per_tenant: int
    task_ttl: float
    task_max_attempts: int
    task_poll_interval: float
    max_wait: float
    task_timeout: float
    max_running_tasks: int
    task_lease: float
    instance_id: str
    public_models: bool
    zoo_dir: Path | None
    queue_depth: int
    max_batch: int
    cpu_max_batch: int
    max_batch_delay_us: int
    inference_workers: int
    intra_op_threads: int
    session_cache_bytes: int
    keepalive_time_ms: int
    keepalive_timeout_ms: int
    keepalive_min_ping_interval_ms: int
    max_connection_age_ms: int
    drain_seconds: float
    log_format: str
    log_level: str

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def resolved_instance_id(self) -> str:
        """This instance's name: configured, else the host name and a digest of the data dir, which a
        restart keeps (so that it takes its own pending tasks back at once)."""
        if self.instance_id:
            return self.instance_id
        digest = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:8]
        return f"{socket.gethostname()}:{digest}"

    @property
    def resolved_database_url(self) -> str:
        """The async SQLAlchemy URL: the configured one with its async driver, or the embedded SQLite."""
        if not self.database_url:
            return f"sqlite+aiosqlite:///{self.data_dir / 'sightd.db'}"
        return async_database_url(self.database_url)


def async_database_url(url: str) -> str:
    """``postgresql://`` and ``sqlite://`` URLs with the async drivers sightd ships."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        # Not echoed: a mistyped URL still holds the database password.
        raise ConfigError("database_url is not a URL (postgresql://user:password@host/db or sqlite:///path)")
    dialect = scheme.split("+", 1)[0]
    if dialect in {"postgresql", "postgres"}:
        return f"postgresql+asyncpg://{rest}"
    if dialect == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    raise ConfigError(f"database_url: unsupported database {dialect!r} (sqlite or postgresql)")


assert {f.name for f in dataclasses.fields(Settings)} == set(_BY_NAME), "OPTIONS and Settings differ"


def add_arguments(parser: argparse.ArgumentParser, names: Sequence[str] | None = None) -> None:
    """Adds ``--config`` and the flags of the named options (all when None) to a parser."""
    parser.add_argument(
        "--config", type=Path, default=None, help=f"TOML configuration file (or {ENV_PREFIX}CONFIG)"
    )
    for option in OPTIONS:
        if names is not None and option.name not in names:
            continue
        default_text = "" if option.default in (None, "", ()) else f" (default: {option.default})"
        if option.repeatable:
            parser.add_argument(
                option.flag, dest=option.name, action="append", default=None, help=option.help + default_text
            )
        else:
            parser.add_argument(option.flag, dest=option.name, default=None, help=option.help + default_text)


def _convert(option: Option, raw: Any, origin: str) -> Any:
    try:
        value = option.parse(raw)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{origin}: {error}") from None
    if option.minimum is not None and value < option.minimum:
        raise ConfigError(f"{origin}: {value} is below the minimum {option.minimum}")
    if option.name == "log_format" and value not in {"json", "text"}:
        raise ConfigError(f"{origin}: log_format is json or text")
    if option.name == "log_level" and str(value).upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(f"{origin}: log_level is DEBUG, INFO, WARNING or ERROR")
    if option.name in {"grpc_port", "http_port", "metrics_port"} and value > 65535:
        raise ConfigError(f"{origin}: {value} is not a port")
    if option.name == "rest_task_wait_seconds" and value > MAX_REST_TASK_WAIT:
        raise ConfigError(
            f"{origin}: {value} is above {MAX_REST_TASK_WAIT:g} s (a REST answer must reach the official "
            "client within its 8 s read timeout)"
        )
    return value


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings of a TOML file (top-level keys, or a ``[sightd]`` table), by option name."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as error:
        raise ConfigError(f"cannot read the configuration file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    table = document.get("sightd", document)
    values: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in _BY_NAME:
            raise ConfigError(f"{path}: unknown setting {key!r}")
        values[name] = value
    return values


def load_settings(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Resolves every option: flag, then environment, then file, then default."""
    environ = os.environ if environ is None else environ
    flags = vars(args) if args is not None else {}
    config_path = flags.get("config") or environ.get(ENV_PREFIX + "CONFIG")
    from_file = read_config_file(Path(config_path)) if config_path else {}
    values: dict[str, Any] = {}
    for option in OPTIONS:
        if flags.get(option.name) is not None:
            raw = flags[option.name]
            if option.repeatable:  # each flag may itself hold a comma-separated list
                raw = [item for entry in raw for item in _parse_list(entry)]
            values[option.name] = _convert(option, raw, option.flag)
        elif option.env in environ:
            values[option.name] = _convert(option, environ[option.env], option.env)
        elif option.name in from_file:
            values[option.name] = _convert(option, from_file[option.name], f"{config_path}: {option.name}")
        else:
            values[option.name] = option.default
    if values["data_dir"] is None:
        values["data_dir"] = _default_data_dir()
    values["data_dir"] = Path(values["data_dir"]).expanduser()
    values["log_level"] = str(values["log_level"]).upper()
    if (values["tls_cert"] is None) != (values["tls_key"] is None):
        raise ConfigError("tls_cert and tls_key go together: give both for TLS, or neither for plaintext")
    if values["tls_client_ca"] is not None and values["tls_cert"] is None:
        raise ConfigError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
    return Settings(**values)
