"""``axis agency``: register agencies, their certificates and AMQP users."""

from __future__ import annotations

import os
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


_SECRETS_DIR = click.option(
    "--secrets-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each new AMQP password to DIR/<CODE>.amqp-password (mode 0600) "
    "instead of printing it.",
)


def _prepare_secrets_dir(secrets_dir: Path | None) -> None:
    """Create the folder (0700) before anything is registered, so a password is never
    made that cannot be written down."""
    if secrets_dir is None:
        return
    try:
        secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"cannot create {secrets_dir}: {exc.strerror}") from None
    if not os.access(secrets_dir, os.W_OK | os.X_OK):
        raise click.ClickException(f"cannot write to {secrets_dir}")


def save_password(secrets_dir: Path, reg: Registration) -> Path:
    """Write ``reg``'s AMQP password to ``secrets_dir/<CODE>.amqp-password``, mode 0600.

    The folder is created 0700 if missing. The file is written under a temporary
    name created 0600 and renamed over any older one, so the password is never
    readable by others, not even for a moment, and a reader never sees half of it.
    It holds the password and a newline: an agency's ``password_file`` as it is.
    """
    assert reg.amqp_password is not None
    secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = secrets_dir / f"{reg.code}.amqp-password"
    temporary = secrets_dir / f".{reg.code}.amqp-password.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(reg.amqp_password + "\n")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def _registration_json(reg: Registration, secrets_dir: Path | None = None) -> dict[str, str | None]:
    if secrets_dir is None:
        return {"code": reg.code, "amqp_user": reg.amqp_user, "amqp_password": reg.amqp_password}
    written = save_password(secrets_dir, reg) if reg.amqp_password else None
    return {
        "code": reg.code,
        "amqp_user": reg.amqp_user,
        "amqp_password_file": None if written is None else str(written),
    }


def _show_password(reg: Registration, secrets_dir: Path | None = None) -> None:
    click.echo(f"  AMQP user:     {reg.amqp_user}")
    if secrets_dir is not None:
        click.echo(f"  AMQP password: written to {save_password(secrets_dir, reg)} (0600)")
        return
    click.echo(f"  AMQP password: {reg.amqp_password}")
    click.echo(
        "  (shown once: the hub keeps no copy; `axis agency reset-password` makes a new one;"
        " --secrets-dir DIR writes it to a file instead)"
    )


@group.command("add")
@click.argument("code")
@click.option("--name", required=True, help="Official name (Vietnamese).")
@click.option("--cert", "cert", required=True, type=_PATH, help="Signing certificate (PEM).")
@click.option("--kind", type=click.Choice(KINDS), default="ministry", show_default=True)
@click.option("--name-en", help="English name.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON: code, amqp_user, amqp_password (amqp_password_file with --secrets-dir).",
)
@_SECRETS_DIR
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
    secrets_dir: Path | None,
) -> None:
    """Register agency CODE with its certificate, AMQP user and inbox.

    A new AMQP user's password is printed once, or with --secrets-dir written to
    DIR/CODE.amqp-password (0600) for handing to the agency.
    """
    _prepare_secrets_dir(secrets_dir)
    with admin(ctx) as a:
        reg = a.register_agency(code, name, cert, kind, name_en)
    if as_json:
        echo_json(_registration_json(reg, secrets_dir))
        return
    click.echo(f"{'registered' if reg.created else 'already registered'}: {code}")
    if reg.amqp_password:
        _show_password(reg, secrets_dir)
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
@_SECRETS_DIR
@click.pass_context
@handle_errors
def import_(
    ctx: click.Context,
    csv_file: Path,
    certs: Path,
    issue_missing: bool,
    ca: Path | None,
    as_json: bool,
    secrets_dir: Path | None,
) -> None:
    """Register every agency of CSV_FILE (columns code,name,name_en,kind) in one go.

    Also refreshes the groups @provinces, @ministries and @all. New AMQP passwords
    are printed once, or with --secrets-dir written one file per agency,
    DIR/CODE.amqp-password (0600).
    """
    if issue_missing and ca is None:
        raise click.UsageError("--issue-missing needs --ca DIR")
    _prepare_secrets_dir(secrets_dir)
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
        echo_json(
            [
                _registration_json(r, secrets_dir) | {"created": r.created}
                for r in result.registrations
            ]
        )
        return
    created = [r for r in result.registrations if r.created]
    click.echo(
        f"{len(result.registrations)} agencies ({len(created)} new, "
        f"{len(result.issued)} dev certificates issued) in {result.seconds:.1f} s"
    )
    click.echo("groups: " + ", ".join(f"@{g} ({n})" for g, n in result.groups.items()))
    with_password = [r for r in result.registrations if r.amqp_password]
    if with_password and secrets_dir is not None:
        for r in with_password:
            save_password(secrets_dir, r)
        click.echo(
            f"AMQP passwords: {len(with_password)} written to {secrets_dir}/<CODE>.amqp-password"
        )
    elif with_password:
        click.echo("AMQP passwords (shown once; --secrets-dir DIR writes them to files):")
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
@_SECRETS_DIR
@click.pass_context
@handle_errors
def reset_password(ctx: click.Context, code: str, as_json: bool, secrets_dir: Path | None) -> None:
    """Give CODE's AMQP user a new password (printed once, or written with
    --secrets-dir) and close its connections."""
    _prepare_secrets_dir(secrets_dir)
    with admin(ctx) as a:
        reg = a.reset_password(code)
    if as_json:
        echo_json(_registration_json(reg, secrets_dir))
        return
    click.echo(f"new password for {code}:")
    _show_password(reg, secrets_dir)


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
