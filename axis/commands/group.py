"""``axis group``: named sets of agencies, addressable as ``@name`` in ``To/OrganId``."""

from __future__ import annotations

import click

from axis.commands._context import admin, echo_json, handle_errors


@click.group("group")
def group() -> None:
    """Groups of agencies (@provinces, @ministries, ...)."""


@group.command("add")
@click.argument("name")
@click.argument("codes", nargs=-1)
@click.option("--description", default="", help="What the group is for.")
@click.pass_context
@handle_errors
def add(ctx: click.Context, name: str, codes: tuple[str, ...], description: str) -> None:
    """Create group NAME, or add CODES to it."""
    with admin(ctx) as a:
        size = a.add_group(name, codes, description)
    click.echo(f"@{name.removeprefix('@')}: {size} member(s)")


@group.command("remove")
@click.argument("name")
@click.argument("codes", nargs=-1)
@click.pass_context
@handle_errors
def remove(ctx: click.Context, name: str, codes: tuple[str, ...]) -> None:
    """Remove CODES from group NAME, or the whole group when no code is given."""
    with admin(ctx) as a:
        changed = a.remove_group(name, codes)
    bare = name.removeprefix("@")
    if codes:
        click.echo(f"removed {len(codes)} code(s) from @{bare}")
    elif changed:
        click.echo(f"removed group @{bare}")
    else:
        click.echo(f"no group @{bare}")


@group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def list_(ctx: click.Context, as_json: bool) -> None:
    """Every group with its members."""
    with admin(ctx) as a:
        groups = a.list_groups()
    if as_json:
        echo_json(groups)
        return
    for g in groups:
        description = f" — {g.description}" if g.description else ""
        click.echo(f"@{g.name} ({len(g.members)}){description}")
        if g.members:
            click.echo("  " + " ".join(g.members))
