"""``axis init``: a ready-to-run hub folder, from nothing.

    >>> config_path = init_hub("demo-hub", vhost="axis-demo")
    >>> config = axis.config.load(config_path)

The folder holds everything one hub needs, with paths in ``axis.toml`` relative to
it so the folder can be moved as a whole::

    DIR/axis.toml               every key of axis/config.py; no secret in it
    DIR/axis.db                 SQLite registry, documents and audit trail (migrated)
    DIR/archive/                original signed bodies
    DIR/pki/                    dev CA: ca.pem (trust anchor), ca.key, crl.pem, index.json
    DIR/hub/hub.key, hub.pem    the hub's EC P-256 signing key and certificate (CN = hub name)
    DIR/secrets/                broker-password, management-password (0600)

and, unless ``broker=False``, the broker gets the vhost, the PROTOCOL section 2
topology and the hub's RabbitMQ user with :func:`~axis.broker.topology.hub_permissions`.

Running it again with ``force=True`` rewrites ``axis.toml`` and re-provisions the
broker but keeps the PKI, the keys, the secrets and the database: agencies'
certificates stay valid and the hub keeps its password.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from axis import config as axis_config
from axis.broker.management import Management
from axis.broker.topology import provision_hub, provision_hub_user
from axis.db import current_revision, upgrade

__all__ = ["HubDirError", "init_hub", "render_config"]

DEFAULT_AMQP_URL = "amqp://127.0.0.1:5672/"
DEFAULT_MANAGEMENT_URL = "http://127.0.0.1:15672"
_HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class HubDirError(Exception):
    """The hub folder cannot be created as asked."""


def _write_secret(path: Path, value: str) -> None:
    # Created 0600 from the start, so the secret is never readable under the umask.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    os.chmod(path, 0o600)


def _toml_value(value: Any, base: Path) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return '""'
    if isinstance(value, Path):
        try:
            value = value.relative_to(base).as_posix()
        except ValueError:
            value = str(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v, base) for v in value) + "]"
    # A JSON string is a valid TOML basic string (same escapes).
    return json.dumps(str(value), ensure_ascii=False)


def render_config(config: axis_config.Config, base: Path) -> str:
    """``config`` as TOML with every key, paths relative to ``base`` where possible."""
    lines = [
        "# Axis hub configuration, written by `axis init`.",
        "# Every key is documented in config.example.toml. Relative paths are resolved",
        "# against this file's folder. Any key can be overridden by an environment variable",
        "# AXIS_<SECTION>_<KEY> (e.g. AXIS_DATABASE_URL); secrets live in the *_file files.",
    ]
    for section in dataclasses.fields(config):
        if section.name == "source":
            continue
        lines += ["", f"[{section.name}]"]
        values = getattr(config, section.name)
        for key in dataclasses.fields(values):
            lines.append(f"{key.name} = {_toml_value(getattr(values, key.name), base)}")
    return "\n".join(lines) + "\n"


def _check_url_has_no_password(url: str, what: str, hint: str) -> None:
    if urlsplit(url).password:
        raise HubDirError(f"the {what} must not contain a password ({hint})")


def init_hub(
    directory: str | os.PathLike[str],
    *,
    vhost: str = "/",
    amqp_url: str = DEFAULT_AMQP_URL,
    management_url: str = DEFAULT_MANAGEMENT_URL,
    management_user: str = "guest",
    management_password: str | None = None,
    management_password_file: str | os.PathLike[str] | None = None,
    database_url: str | None = None,
    hub_name: str = "axis-hub",
    broker: bool = True,
    force: bool = False,
    user_tags: Iterable[str] = (),
    report: Callable[[str], None] | None = None,
) -> Path:
    """Create (or with ``force`` refresh) a hub folder; return the path of its ``axis.toml``.

    ``management_password`` defaults to the content of ``management_password_file``,
    then to a secret already in the folder, then to ``guest`` (RabbitMQ's
    development default). ``user_tags`` are put on the hub's RabbitMQ user.
    ``report`` receives one line per thing created. Raises :class:`HubDirError`
    for a refused request, :class:`~axis.broker.management.ManagementError` if the
    broker fails.
    """
    from signing.pki import init_ca, issue

    say = report or (lambda _line: None)
    root = Path(directory).expanduser().resolve()
    config_path = root / axis_config.DEFAULT_FILE
    if config_path.exists() and not force:
        raise HubDirError(f"{config_path} already exists (use --force to rewrite it)")
    if not _HUB_NAME.fullmatch(hub_name):
        raise HubDirError(f"{hub_name!r} is not a usable hub name ([A-Za-z0-9._-], at most 64)")
    _check_url_has_no_password(amqp_url, "AMQP URL", "the hub's password goes in secrets/")
    _check_url_has_no_password(
        database_url or "",
        "database URL",
        "use ~/.pgpass or the AXIS_DATABASE_URL environment variable",
    )
    root.mkdir(parents=True, exist_ok=True)

    pki_dir, hub_dir, secrets_dir = root / "pki", root / "hub", root / "secrets"
    if (pki_dir / "ca.pem").exists():
        say(f"kept      {pki_dir}/ (existing dev CA)")
    else:
        init_ca(pki_dir, name="Axis Dev CA")
        say(f"created   {pki_dir}/ca.pem, ca.key, crl.pem (dev CA, the trust anchor)")

    hub_key, hub_cert = hub_dir / "hub.key", hub_dir / "hub.pem"
    if hub_key.exists() and hub_cert.exists():
        say(f"kept      {hub_key}, {hub_cert}")
    else:
        issued = issue(hub_name, ca_dir=pki_dir, out_dir=hub_dir, name="Axis hub")
        os.replace(issued.key_path, hub_key)
        os.replace(issued.cert_path, hub_cert)
        say(f"created   {hub_key} (EC P-256), {hub_cert} (CN={hub_name}, issued by the dev CA)")

    secrets_dir.mkdir(mode=0o700, exist_ok=True)
    broker_secret = secrets_dir / "broker-password"
    if broker_secret.exists():
        say(f"kept      {broker_secret}")
    else:
        _write_secret(broker_secret, secrets.token_urlsafe(32))
        say(f"created   {broker_secret} (the hub's RabbitMQ password)")
    mgmt_secret = secrets_dir / "management-password"
    if management_password is None and management_password_file is not None:
        try:
            management_password = Path(management_password_file).read_text("utf-8").strip()
        except OSError as exc:
            raise HubDirError(f"cannot read {management_password_file}: {exc.strerror}") from None
    if management_password is not None or not mgmt_secret.exists():
        _write_secret(mgmt_secret, management_password or "guest")
        say(f"wrote     {mgmt_secret}")
    (root / "archive").mkdir(exist_ok=True)

    defaults = axis_config.Config()
    config = dataclasses.replace(
        defaults,
        hub=dataclasses.replace(defaults.hub, name=hub_name, archive_dir=root / "archive"),
        database=dataclasses.replace(defaults.database, url=database_url or "sqlite:///axis.db"),
        broker=dataclasses.replace(
            defaults.broker,
            url=amqp_url,
            vhost=vhost,
            user=hub_name,
            password_file=broker_secret,
        ),
        management=dataclasses.replace(
            defaults.management,
            url=management_url,
            user=management_user,
            password_file=mgmt_secret,
        ),
        trust=axis_config.TrustSection(anchors=(pki_dir / "ca.pem",), crls=(pki_dir / "crl.pem",)),
        signing=axis_config.SigningSection(key=hub_key, certificate=hub_cert),
    )
    tmp = config_path.with_suffix(".toml.tmp")
    tmp.write_text(render_config(config, root), encoding="utf-8")
    os.replace(tmp, config_path)
    say(f"wrote     {config_path}")

    # Read it back through the loader: what the hub will see is what we check.
    loaded = axis_config.load(config_path, env={})
    upgrade(loaded.database.url)
    say(f"migrated  the database to revision {current_revision(loaded.database.url)}")

    if broker:
        _provision_broker(loaded, user_tags)
        say(
            f"provisioned RabbitMQ vhost {loaded.broker.vhost!r}: axis.submit, axis.inbound, "
            f"axis.deliver, axis.quarantine, user {hub_name!r}"
        )
    return config_path


def _provision_broker(config: axis_config.Config, user_tags: Iterable[str]) -> None:
    """Vhost, topology and the hub's user, refusing to take over another hub's user."""
    vhost, name = config.broker.vhost, config.broker.user
    with Management(
        config.management.url, config.management.user, config.management.secret()
    ) as mgmt:
        others = sorted(p["vhost"] for p in mgmt.user_permissions(name) if p.get("vhost") != vhost)
        if others:
            # Resetting its password would cut off the hub that already uses it.
            raise HubDirError(
                f"RabbitMQ user {name!r} already serves vhost(s) {', '.join(others)}; "
                "choose another hub name (--hub-name)"
            )
        provision_hub(mgmt, vhost)
        provision_hub_user(mgmt, vhost, config.broker.secret(), name=name, tags=user_tags)
