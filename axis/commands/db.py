"""``axis db``: the database schema."""

from __future__ import annotations

import click

from axis.commands._context import handle_errors, load_config
from axis.db import current_revision, upgrade


@click.group("db")
def group() -> None:
    """Database schema migrations."""


@group.command("upgrade")
@click.pass_context
@handle_errors
def upgrade_(ctx: click.Context) -> None:
    """Migrate the configured database to the latest schema revision."""
    config = load_config(ctx)
    try:
        upgrade(config.database.url)
    except Exception as exc:  # Alembic and drivers raise many types; all mean "failed".
        raise click.ClickException(f"database upgrade failed: {exc}") from None
    click.echo(f"database at revision {current_revision(config.database.url)}")
