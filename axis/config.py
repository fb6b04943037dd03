"""The hub's configuration: one typed object, loaded from TOML with ``AXIS_*`` overrides.

Every key lives in a section of ``axis.toml`` (``[database] url = ...``) and can be
overridden by an environment variable named ``AXIS_<SECTION>_<KEY>`` in upper case
(``AXIS_DATABASE_URL``). Relative paths are resolved against the folder of the file,
so a hub folder made by ``axis init`` can be moved as a whole. Secrets can be given
inline or, better, as ``*_file`` keys that name a file holding them, so that they
never appear on a command line or in ``ps``.

A bad or missing key stops start-up with :class:`ConfigError`, whose message names
the key and the file.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "AXIS_"
DEFAULT_FILE = "axis.toml"


class ConfigError(Exception):
    """A configuration key is missing, mistyped or out of range."""

    def __init__(self, message: str, *, key: str | None = None, source: str | None = None):
        where = " ".join(
            part for part in (f"key {key}" if key else "", f"in {source}" if source else "") if part
        )
        super().__init__(f"{message} ({where})" if where else message)
        self.key = key
        self.source = source


@dataclass(frozen=True)
class HubSection:
    """Who the hub is and the limits it enforces."""

    name: str = "axis-hub"
    """The hub's AMQP user and the CN of its certificate."""
    archive_dir: Path = Path("archive")
    """Content-addressed archive of every original signed body received."""
    max_message_bytes: int = 20 * 1024 * 1024
    """Bodies above this are rejected as TOO_LARGE (PROTOCOL section 3)."""


@dataclass(frozen=True)
class DatabaseSection:
    """Where the registry, documents and audit trail live."""

    url: str = "sqlite:///axis.db"
    """SQLAlchemy URL; relative SQLite paths are resolved against the config file."""


@dataclass(frozen=True)
class BrokerSection:
    """The RabbitMQ the hub consumes from and delivers to."""

    url: str = "amqp://127.0.0.1:5672/"
    """AMQP or AMQPS URL without credentials (they come from user/password below)."""
    vhost: str = "/"
    user: str = "axis-hub"
    password: str = ""
    password_file: Path | None = None
    heartbeat: int = 30
    tls_ca_file: Path | None = None
    """CA that signed the broker's TLS certificate (``amqps://`` URLs)."""
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    def secret(self) -> str:
        """The password, read from ``password_file`` when one is configured."""
        return _read_secret(self.password, self.password_file)


@dataclass(frozen=True)
class ManagementSection:
    """RabbitMQ's management HTTP API, used to provision agency users and inboxes."""

    url: str = "http://127.0.0.1:15672"
    user: str = "guest"
    password: str = ""
    password_file: Path | None = None

    def secret(self) -> str:
        """The password, read from ``password_file`` when one is configured."""
        return _read_secret(self.password, self.password_file)


@dataclass(frozen=True)
class TrustSection:
    """The trust anchors agencies' certificates must chain to, and their CRLs."""

    anchors: tuple[Path, ...] = ()
    crls: tuple[Path, ...] = ()


@dataclass(frozen=True)
class SigningSection:
    """The hub's own key and certificate, for receipts, rejections and chain heads;
    and until when agencies' documents signed under the legacy profile are accepted."""

    key: Path = Path("hub/hub.key")
    certificate: Path = Path("hub/hub.pem")
    legacy_profile_until: date | None = None
    """Sunset of the legacy signature profile (rsa-sha1/sha1/C14N 1.0, PROTOCOL section
    5), a Vietnamese calendar date: legacy-signed documents are accepted while the
    hub's date in Asia/Ho_Chi_Minh is before it. ``None`` (the default): never."""


@dataclass(frozen=True)
class RouterSection:
    """Throughput and pacing of ``axis serve``."""

    workers: int = 1
    prefetch: int = 1000
    """Unacknowledged inbound messages a router holds at once."""
    batch_size: int = 250
    """Messages decided and recorded in one database transaction."""
    batch_wait_ms: float = 2.0
    """How long a partial batch waits for more messages, once two batches await the
    broker's confirms (before that, a message is routed at once)."""
    chain_head_interval_s: float = 60.0
    """How often the hub signs the head of the audit chain."""


@dataclass(frozen=True)
class LogSection:
    """Structured logging."""

    format: str = "console"
    """``console`` (readable) or ``json`` (production)."""
    level: str = "info"


@dataclass(frozen=True)
class Config:
    """The whole configuration of one hub."""

    hub: HubSection = field(default_factory=HubSection)
    database: DatabaseSection = field(default_factory=DatabaseSection)
    broker: BrokerSection = field(default_factory=BrokerSection)
    management: ManagementSection = field(default_factory=ManagementSection)
    trust: TrustSection = field(default_factory=TrustSection)
    signing: SigningSection = field(default_factory=SigningSection)
    router: RouterSection = field(default_factory=RouterSection)
    log: LogSection = field(default_factory=LogSection)
    source: Path | None = None
    """The file this configuration was read from."""


_LIMITS: dict[str, tuple[float, float]] = {
    "hub.max_message_bytes": (1024, 1 << 31),
    "broker.heartbeat": (0, 3600),
    "router.workers": (1, 64),
    "router.prefetch": (1, 100_000),
    "router.batch_size": (1, 10_000),
    "router.batch_wait_ms": (0, 10_000),
    "router.chain_head_interval_s": (1, 86_400),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "log.format": ("console", "json"),
    "log.level": ("debug", "info", "warning", "error"),
}


def _read_secret(inline: str, path: Path | None) -> str:
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the secret file {path}: {exc.strerror}") from None
    return inline


def resolve_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: ``explicit``, then ``$AXIS_CONFIG``, then ``./axis.toml``."""
    chosen = explicit or os.environ.get("AXIS_CONFIG") or DEFAULT_FILE
    return Path(chosen)


def load(
    path: str | os.PathLike[str] | None = None, *, env: typing.Mapping[str, str] | None = None
) -> Config:
    """Read ``path`` (see :func:`resolve_path`), apply ``AXIS_*`` overrides and validate.

    Raises :class:`ConfigError` naming the key and the file on any problem.
    """
    file = resolve_path(path)
    source = str(file)
    if not file.is_file():
        raise ConfigError(
            f"configuration file {file} not found (create one with 'axis init DIR', "
            "or point --config / AXIS_CONFIG at it)",
            source=source,
        )
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", source=source) from None
    return from_mapping(raw, base_dir=file.resolve().parent, source=source, env=env)


def from_mapping(
    raw: typing.Mapping[str, Any],
    *,
    base_dir: Path,
    source: str = "<mapping>",
    env: typing.Mapping[str, str] | None = None,
) -> Config:
    """Build a validated :class:`Config` from parsed TOML plus environment overrides."""
    env = os.environ if env is None else env
    sections: dict[str, Any] = {}
    hints = typing.get_type_hints(Config)
    known = [f.name for f in dataclasses.fields(Config) if f.name != "source"]
    for name in raw:
        if name not in known:
            raise ConfigError(f"unknown section [{name}]", key=name, source=source)
    for name in known:
        table = raw.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError("must be a table", key=name, source=source)
        sections[name] = _build_section(name, hints[name], table, base_dir, source, env)
    _check_broker(sections["broker"], source)
    return Config(**sections, source=Path(source))


def _check_broker(broker: BrokerSection, source: str) -> None:
    """The broker URL: amqp or amqps, no credentials, TLS files only with amqps."""
    try:
        split = urlsplit(broker.url)
        split.port  # noqa: B018 - parsing the port is what validates it
    except ValueError as exc:
        raise ConfigError(f"not a valid URL: {exc}", key="broker.url", source=source) from None
    if split.username is not None or split.password is not None:
        # Said without echoing the URL: it holds a secret.
        raise ConfigError(
            "must not contain credentials: give broker.user, and the password in "
            "broker.password_file (or AXIS_BROKER_PASSWORD)",
            key="broker.url",
            source=source,
        )
    if split.scheme not in ("amqp", "amqps") or not split.hostname:
        raise ConfigError(
            f"must be amqp://HOST[:PORT]/ or amqps://HOST[:PORT]/, not {broker.url!r}",
            key="broker.url",
            source=source,
        )
    if split.scheme == "amqp":
        for key in ("tls_ca_file", "tls_cert_file", "tls_key_file"):
            if getattr(broker, key) is not None:
                raise ConfigError(
                    "is set but broker.url is amqp://, which is not encrypted: "
                    "use amqps:// for TLS",
                    key=f"broker.{key}",
                    source=source,
                )
    if broker.tls_key_file is not None and broker.tls_cert_file is None:
        raise ConfigError(
            "needs broker.tls_cert_file, the client certificate it belongs to",
            key="broker.tls_key_file",
            source=source,
        )


def _build_section(
    name: str,
    section_type: type,
    table: dict[str, Any],
    base_dir: Path,
    source: str,
    env: typing.Mapping[str, str],
) -> Any:
    hints = typing.get_type_hints(section_type)
    fields = {f.name for f in dataclasses.fields(section_type)}
    for key in table:
        if key not in fields:
            raise ConfigError("unknown key", key=f"{name}.{key}", source=source)
    values: dict[str, Any] = {}
    for key in fields:
        dotted = f"{name}.{key}"
        env_name = f"{ENV_PREFIX}{name}_{key}".upper()
        if env_name in env:
            value: Any = env[env_name]
            where = f"environment variable {env_name}"
            from_env = True
        elif key in table:
            value, where, from_env = table[key], source, False
        else:
            continue
        values[key] = _coerce(value, hints[key], dotted, where, base_dir, from_env)
        _check_range(dotted, values[key], where)
    for f in dataclasses.fields(section_type):
        default = f.default
        if f.name not in values and isinstance(default, Path) and not default.is_absolute():
            # Defaults are relative to the hub's folder too, not to the current directory.
            values[f.name] = base_dir / default
    section = section_type(**values)
    if name == "database":
        section = dataclasses.replace(section, url=_absolute_sqlite(section.url, base_dir))
    return section


def _coerce(value: Any, hint: Any, key: str, where: str, base_dir: Path, from_env: bool) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        inner = [a for a in args if a is not type(None)]
        if value in ("", None):
            return None
        return _coerce(value, inner[0], key, where, base_dir, from_env)
    if origin is tuple:
        items = [v.strip() for v in value.split(",") if v.strip()] if from_env else value
        if not isinstance(items, list):
            raise ConfigError("must be a list", key=key, source=where)
        return tuple(_coerce(v, args[0], key, where, base_dir, from_env) for v in items)
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError("must be a non-empty path string", key=key, source=where)
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base_dir / path)
    if hint is bool:
        if from_env:
            return value.strip().lower() in ("1", "true", "yes", "on")
        if not isinstance(value, bool):
            raise ConfigError("must be true or false", key=key, source=where)
        return value
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"must be a number, not {value!r}", key=key, source=where)
        try:
            return hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"must be a number, not {value!r}", key=key, source=where) from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"must be a string, not {value!r}", key=key, source=where)
        return value
    if hint is date:
        return _date(value, key, where)
    raise ConfigError(f"unsupported type {hint}", key=key, source=where)


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _date(value: Any, key: str, where: str) -> date:
    """A calendar date: "YYYY-MM-DD" (all an environment variable can give), or a TOML date."""
    # A TOML local date arrives as a date; a TOML date-time (also a date) is refused.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    # fromisoformat alone would also take "20270701" or "2027-W26-4"; one form only.
    if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ConfigError(f"must be a date YYYY-MM-DD, not {value!r}", key=key, source=where)


def _check_range(key: str, value: Any, where: str) -> None:
    if key in _LIMITS and value is not None:
        low, high = _LIMITS[key]
        if not low <= value <= high:
            raise ConfigError(
                f"must be between {low:g} and {high:g}, not {value}", key=key, source=where
            )
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(
            f"must be one of {', '.join(_CHOICES[key])}, not {value!r}", key=key, source=where
        )


def _absolute_sqlite(url: str, base_dir: Path) -> str:
    """Resolve ``sqlite:///relative.db`` against the config file's folder."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str((base_dir / url[len(prefix) :]).resolve())
    return url
