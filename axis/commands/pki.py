"""``axis pki``: the development PKI (a CA, agency certificates, revocation)."""

from __future__ import annotations

from pathlib import Path

import click

from signing import pki as devpki

_ALGO = click.Choice([a.value for a in devpki.KeyAlgorithm])


@click.group("pki")
def group() -> None:
    """Development PKI for demos and tests (production uses the government CA)."""


@group.command("init-ca")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="Axis Dev CA", show_default=True, help="The CA's CN.")
@click.option("--algo", type=_ALGO, default="ec", show_default=True, help="Key type.")
@click.option("--days", type=click.IntRange(min=1), default=3650, show_default=True)
def init_ca(directory: Path, name: str, algo: str, days: int) -> None:
    """Create a dev CA in DIRECTORY: ca.pem, ca.key (0600), an empty crl.pem."""
    try:
        ca = devpki.init_ca(directory, name=name, algo=algo, days=days)
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"certificate  {ca.cert_path}")
    click.echo(f"private key  {ca.key_path}")
    click.echo(f"crl          {ca.crl_path}")
    click.echo(f"sha256       {ca.fingerprint}")


@group.command("issue")
@click.argument("code")
@click.option(
    "--ca",
    "ca_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The CA directory made by init-ca.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where CODE.key and CODE.pem are written.",
)
@click.option("--algo", type=_ALGO, default="ec", show_default=True, help="Key type.")
@click.option("--days", type=click.IntRange(min=1), default=730, show_default=True)
@click.option("--name", default=None, help="The agency's name (subject O).")
def issue(code: str, ca_dir: Path, out_dir: Path, algo: str, days: int, name: str | None) -> None:
    """Issue a document signing certificate for agency CODE (its subject CN)."""
    try:
        issued = devpki.issue(code, ca_dir=ca_dir, out_dir=out_dir, algo=algo, days=days, name=name)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"certificate  {issued.cert_path}")
    click.echo(f"private key  {issued.key_path}")
    click.echo(f"serial       {issued.serial:x}")
    click.echo(f"sha256       {issued.fingerprint}")


@group.command("issue-tls")
@click.argument("name")
@click.option(
    "--ca",
    "ca_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The CA directory made by init-ca.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where NAME.key and NAME.pem are written.",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    help="DNS name or IP address the server is reached by (repeatable; subjectAltName).",
)
@click.option("--client", is_flag=True, help="A client certificate (CN = NAME) instead.")
@click.option("--algo", type=_ALGO, default="ec", show_default=True, help="Key type.")
@click.option("--days", type=click.IntRange(min=1), default=825, show_default=True)
def issue_tls(
    name: str,
    ca_dir: Path,
    out_dir: Path,
    hosts: tuple[str, ...],
    client: bool,
    algo: str,
    days: int,
) -> None:
    """Issue a TLS certificate: the broker's (--host ...) or a client's (--client).

    For RabbitMQ's TLS listener (see docs/guarantees.md, "TLS"), e.g.
    ``axis pki issue-tls broker --host localhost --host 127.0.0.1 --ca pki --out tls``.
    """
    try:
        issued = devpki.issue_tls(
            name, ca_dir=ca_dir, out_dir=out_dir, hosts=hosts, client=client, algo=algo, days=days
        )
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"certificate  {issued.cert_path}")
    click.echo(f"private key  {issued.key_path}")
    click.echo(f"serial       {issued.serial:x}")
    click.echo(f"sha256       {issued.fingerprint}")


@group.command("revoke")
@click.argument("cert", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--ca",
    "ca_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The CA directory that issued CERT.",
)
def revoke(cert: Path, ca_dir: Path) -> None:
    """Put CERT on the CA's CRL and re-sign DIR/crl.pem."""
    try:
        serial = devpki.revoke(cert, ca_dir=ca_dir)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked serial {serial:x}; CRL written to {ca_dir / 'crl.pem'}")
