"""``axis bridge``: connect an agency's document-management system to the hub.

``axis bridge folder`` runs :class:`adapters.FolderBridge`: the agency's exchange
with the hub as files in a folder tree (see :mod:`adapters.folder` for the layout).
It runs on the agency's side, with the agency's credentials, not the hub's.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click


@click.group("bridge")
def group() -> None:
    """Bridges between an agency's DMS and the hub (run at the agency)."""


@group.command("folder")
@click.option("--agency", "code", help="The agency code (the AMQP user).")
@click.option(
    "--root",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder tree: outbox/, sent/, failed/, inbox/, status/ ...",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Agency TOML ([agency], [broker], [trust]); options below override it.",
)
@click.option(
    "--amqp-url", help="amqp:// or amqps:// URL of the hub's broker, without credentials."
)
@click.option("--vhost", help="The broker vhost (default: from the URL, else /).")
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the agency's AMQP password.",
)
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--cert", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--trust",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA certificate (PEM) of agency certificates; repeatable.",
)
@click.option(
    "--hub-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The hub's signing certificate: its receipts must verify against it.",
)
@click.option(
    "--tls-ca",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA of the broker's TLS certificate (amqps://).",
)
@click.option("--once", is_flag=True, help="Exchange what is there, wait for answers, exit.")
@click.option("--interval", type=click.FloatRange(0.1), default=2.0, show_default=True)
@click.option(
    "--settle",
    type=click.FloatRange(0),
    default=2.0,
    show_default=True,
    help="Seconds an outbox file must stay unchanged before it is sent.",
)
@click.option("--answer-timeout", type=click.FloatRange(0), default=120.0, show_default=True)
@click.option("--log-format", type=click.Choice(["console", "json"]), default="console")
def folder(
    code: str | None,
    root: Path,
    config_file: Path | None,
    amqp_url: str | None,
    vhost: str | None,
    password_file: Path | None,
    key: Path | None,
    cert: Path | None,
    trust: tuple[Path, ...],
    hub_cert: Path | None,
    tls_ca: Path | None,
    once: bool,
    interval: float,
    settle: float,
    answer_timeout: float,
    log_format: str,
) -> None:
    """Exchange documents as files under --root until SIGTERM/SIGINT (or once).

    outbox/*.xml are sent (unsigned ones signed with --key) and moved to sent/ with
    NAME.receipt.xml, or to failed/ with NAME.rejection.xml; deliveries land in
    inbox/ and status/ as <receipt-id>.xml with a .json sidecar. Write outbox
    files as NAME.xml.tmp and rename them, or rely on --settle.
    """
    from adapters import AgencyClient, AxisClientError, FolderBridge
    from axis import logs

    if amqp_url is not None and urlsplit(amqp_url).password is not None:
        # Not echoed: the URL holds the secret, and a command line is visible in ps.
        raise click.BadParameter(
            "must not carry a password, which every user could read in ps: "
            "give it in --password-file",
            param_hint="--amqp-url",
        )
    logs.configure(log_format)
    options: dict[str, Any] = {
        "code": code,
        "amqp_url": amqp_url,
        "vhost": vhost,
        "password_file": password_file,
        "key": key,
        "certificate": cert,
        "trust_anchors": list(trust) or None,
        "hub_certificate": hub_cert,
        "tls_ca_file": tls_ca,
        "state_dir": root / ".axis-bridge" / "state",
    }
    try:
        if config_file is not None:
            client = AgencyClient.from_config(config_file, **options)
        else:
            missing = [
                flag
                for flag, value in (
                    ("--agency", code),
                    ("--amqp-url", amqp_url),
                    ("--password-file", password_file),
                    ("--key", key),
                    ("--cert", cert),
                    ("--trust", trust),
                )
                if not value
            ]
            if missing:
                raise click.UsageError(f"without --config, give {', '.join(missing)}")
            client = AgencyClient(**{k: v for k, v in options.items() if v is not None})
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    bridge = FolderBridge(client, root, settle=settle, answer_timeout=answer_timeout)

    def stop(_signum: int, _frame: object) -> None:
        bridge.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        with client:
            if once:
                complete = bridge.run_once()
                sys.exit(0 if complete else 3)
            bridge.run(interval=interval)
    except AxisClientError as exc:
        raise click.ClickException(str(exc)) from None
