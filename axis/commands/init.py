"""``axis init``: create a hub folder ready to serve."""

from __future__ import annotations

from pathlib import Path

import click

from axis.commands._context import handle_errors
from axis.hubdir import DEFAULT_AMQP_URL, DEFAULT_MANAGEMENT_URL, init_hub


@click.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--vhost", default="/", show_default=True, help="RabbitMQ virtual host.")
@click.option(
    "--amqp-url", default=DEFAULT_AMQP_URL, show_default=True, help="Without credentials."
)
@click.option("--management-url", default=DEFAULT_MANAGEMENT_URL, show_default=True)
@click.option("--management-user", default="guest", show_default=True)
@click.option(
    "--management-password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the management password (default: guest).",
)
@click.option("--database-url", help="SQLAlchemy URL (default: SQLite DIR/axis.db).")
@click.option("--hub-name", default="axis-hub", show_default=True, help="AMQP user and CN.")
@click.option("--no-broker", is_flag=True, help="Do not touch RabbitMQ.")
@click.option("--force", is_flag=True, help="Rewrite axis.toml; keeps PKI, keys and secrets.")
@handle_errors
def init(
    directory: Path,
    vhost: str,
    amqp_url: str,
    management_url: str,
    management_user: str,
    management_password_file: Path | None,
    database_url: str | None,
    hub_name: str,
    no_broker: bool,
    force: bool,
) -> None:
    """Create DIRECTORY with axis.toml, a dev CA, the hub's key, the database and the broker."""
    config_path = init_hub(
        directory,
        vhost=vhost,
        amqp_url=amqp_url,
        management_url=management_url,
        management_user=management_user,
        management_password_file=management_password_file,
        database_url=database_url,
        hub_name=hub_name,
        broker=not no_broker,
        force=force,
        report=click.echo,
    )
    root = config_path.parent
    click.echo("")
    click.echo("Next steps:")
    click.echo(f"  export AXIS_CONFIG={config_path}")
    if no_broker:
        click.echo(f"  axis init {root} --force   # without --no-broker, once RabbitMQ is up")
    csv = Path(__file__).resolve().parent.parent / "data" / "agencies.csv"
    click.echo(f"  axis agency import {csv} \\")
    click.echo(f"      --certs {root / 'certs'} --issue-missing --ca {root / 'pki'}")
    click.echo("  axis serve          # run the hub router")
    click.echo("  axis status         # check broker, queues and audit trail")
