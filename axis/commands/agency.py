"""``axis agency``: register agencies, their certificates and AMQP users."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click._termui_impl import ProgressBar

from axis.admin import AgencyInfo, Registration, read_agencies_csv
from axis.commands._context import admin, echo_json, handle_errors
from axis.registry import KINDS

_PATH = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("agency")
def group() -> None:
    """Agencies: registration, certificates, suspension, AMQP passwords."""


def _registration_json(reg: Registration) -> dict[str, str | None]:
    return {"code": reg.code, "amqp_user": reg.amqp_user, "amqp_password": reg.amqp_password}


def _show_password(reg: Registration) -> None:
    click.echo(f"  AMQP user:     {reg.amqp_user}")
    click.echo(f"  AMQP password: {reg.amqp_password}")
    click.echo(
        "  (shown once: the hub keeps no copy; `axis agency reset-password` makes a new one)"
    )


@group.command("add")
@click.argument("code")
@click.option("--name", required=True, help="Official name (Vietnamese).")
@click.option("--cert", "cert", required=True, type=_PATH, help="Signing certificate (PEM).")
@click.option("--kind", type=click.Choice(KINDS), default="ministry", show_default=True)
@click.option("--name-en", help="English name.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: code, amqp_user, amqp_password.")
@click.pass_context
@handle_errors
def add(
    ctx: click.Context,
    code: str,
    name: str,
    cert: Path,
    kind: str,
    name_en: str | None,
    as_json: bool,
) -> None:
    """Register agency CODE with its certificate, AMQP user and inbox."""
    with admin(ctx) as a:
        reg = a.register_agency(code, name, cert, kind, name_en)
    if as_json:
        echo_json(_registration_json(reg))
        return
    click.echo(f"{'registered' if reg.created else 'already registered'}: {code}")
    if reg.amqp_password:
        _show_password(reg)
    elif reg.created:
        click.echo(
            f"  AMQP user {reg.amqp_user} already existed on this broker (another hub uses it);"
            " its password is unchanged (`axis agency reset-password` sets a new one)"
        )


@group.command("import")
@click.argument("csv_file", type=_PATH)
@click.option(
    "--certs",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder holding <CODE>.pem for each agency.",
)
@click.option("--issue-missing", is_flag=True, help="Issue dev certificates for those lacking one.")
@click.option(
    "--ca",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Dev CA folder for --issue-missing (e.g. HUB/pki).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: one object per agency.")
@click.pass_context
@handle_errors
def import_(
    ctx: click.Context,
    csv_file: Path,
    certs: Path,
    issue_missing: bool,
    ca: Path | None,
    as_json: bool,
) -> None:
    """Register every agency of CSV_FILE (columns code,name,name_en,kind) in one go.

    Also refreshes the groups @provinces, @ministries and @all.
    """
    if issue_missing and ca is None:
        raise click.UsageError("--issue-missing needs --ca DIR")
    total = len(read_agencies_csv(csv_file))
    bar: ProgressBar[int] = click.progressbar(length=total, label="registering", file=sys.stderr)
    with admin(ctx) as a, bar:
        result = a.import_agencies(
            csv_file,
            certs,
            issue_missing_from_ca=ca if issue_missing else None,
            progress=bar.update,
        )
    if as_json:
        echo_json([_registration_json(r) | {"created": r.created} for r in result.registrations])
        return
    created = [r for r in result.registrations if r.created]
    click.echo(
        f"{len(result.registrations)} agencies ({len(created)} new, "
        f"{len(result.issued)} dev certificates issued) in {result.seconds:.1f} s"
    )
    click.echo("groups: " + ", ".join(f"@{g} ({n})" for g, n in result.groups.items()))
    with_password = [r for r in result.registrations if r.amqp_password]
    if with_password:
        click.echo("AMQP passwords (shown once):")
        for r in with_password:
            click.echo(f"  {r.code}\t{r.amqp_password}")


def _depth(info: AgencyInfo) -> str:
    return "-" if info.inbox_depth is None else str(info.inbox_depth)


@group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def list_(ctx: click.Context, as_json: bool) -> None:
    """Registered agencies with state, certificate count and inbox depth."""
    with admin(ctx) as a:
        agencies = a.list_agencies()
    if as_json:
        echo_json(
            [
                {
                    "code": i.code,
                    "name": i.name,
                    "kind": i.kind,
                    "state": i.state,
                    "certificates": i.certificate_count,
                    "inbox_depth": i.inbox_depth,
                }
                for i in agencies
            ]
        )
        return
    click.echo(f"{'CODE':<16} {'KIND':<18} {'STATE':<10} {'CERTS':>5} {'INBOX':>6}  NAME")
    for i in agencies:
        click.echo(
            f"{i.code:<16} {i.kind:<18} {i.state:<10} {i.certificate_count:>5} "
            f"{_depth(i):>6}  {i.name}"
        )
    click.echo(f"{len(agencies)} agencies")


@group.command("show")
@click.argument("code")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def show(ctx: click.Context, code: str, as_json: bool) -> None:
    """One agency: certificates (fingerprint, validity, state), groups, inbox depth."""
    with admin(ctx) as a:
        info = a.show_agency(code)
    if as_json:
        echo_json(info)
        return
    click.echo(f"{info.code}  {info.name}" + (f" ({info.name_en})" if info.name_en else ""))
    click.echo(f"  kind:   {info.kind}")
    click.echo(f"  state:  {info.state}")
    click.echo(f"  groups: {', '.join(info.groups) or '-'}")
    click.echo(f"  inbox:  axis.inbox.{info.code}, {_depth(info)} message(s) waiting")
    click.echo(f"  certificates ({info.certificate_count}):")
    for c in info.certificates:
        click.echo(f"    {c.fingerprint}  [{c.state}]")
        click.echo(f"      subject {c.subject}, serial {c.serial}")
        click.echo(f"      valid {c.not_before:%Y-%m-%d %H:%M} – {c.not_after:%Y-%m-%d %H:%M} UTC")


@group.command("suspend")
@click.argument("code")
@click.pass_context
@handle_errors
def suspend(ctx: click.Context, code: str) -> None:
    """Suspend CODE: its submissions are rejected and nothing is delivered to it."""
    with admin(ctx) as a:
        closed = a.suspend(code)
    click.echo(f"suspended {code} ({closed} open connection(s) closed)")


@group.command("resume")
@click.argument("code")
@click.pass_context
@handle_errors
def resume(ctx: click.Context, code: str) -> None:
    """Make a suspended agency active again."""
    with admin(ctx) as a:
        changed = a.resume(code)
    click.echo(f"resumed {code}" if changed else f"{code} was already active")


@group.command("add-cert")
@click.argument("code")
@click.argument("cert", type=_PATH)
@click.pass_context
@handle_errors
def add_cert(ctx: click.Context, code: str, cert: Path) -> None:
    """Bind another signing certificate (PEM) to CODE."""
    with admin(ctx) as a:
        fp = a.add_cert(code, cert)
    click.echo(f"certificate {fp} bound to {code}")


@group.command("revoke-cert")
@click.argument("fingerprint")
@click.pass_context
@handle_errors
def revoke_cert(ctx: click.Context, fingerprint: str) -> None:
    """Revoke a certificate in the registry by SHA-256 fingerprint (or a unique prefix)."""
    with admin(ctx) as a:
        code, full = a.revoke_cert(fingerprint)
    click.echo(f"revoked certificate {full} of {code}")


@group.command("reset-password")
@click.argument("code")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def reset_password(ctx: click.Context, code: str, as_json: bool) -> None:
    """Give CODE's AMQP user a new password (printed once) and close its connections."""
    with admin(ctx) as a:
        reg = a.reset_password(code)
    if as_json:
        echo_json(_registration_json(reg))
        return
    click.echo(f"new password for {code}:")
    _show_password(reg)


@group.command("remove")
@click.argument("code")
@click.option(
    "--purge-inbox",
    is_flag=True,
    help="Also delete its inbox and the messages in it (kept by default).",
)
@click.pass_context
@handle_errors
def remove(ctx: click.Context, code: str, purge_inbox: bool) -> None:
    """Remove CODE from the registry and delete its AMQP user.

    The audit trail keeps its history. Its inbox is kept (with any undelivered
    messages) unless --purge-inbox is given.
    """
    with admin(ctx) as a:
        removed = a.remove(code, purge_inbox=purge_inbox)
    if not removed:
        click.echo(f"{code} was not registered (broker leftovers cleaned up)")
        return
    kept = "deleted" if purge_inbox else "kept"
    click.echo(f"removed {code}; AMQP user deleted; inbox axis.inbox.{code} {kept}")
