"""``axis doc sign`` and ``axis doc verify``: the signature profile by hand.

``verify`` needs nothing but the document and the trust configuration (anchors,
CRLs), like X-Road's standalone verifier: an agency or an auditor can check a
document the hub delivered without the hub.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from axis.rejections import Rejection
from schemas.xml import DEFAULT_MAX_BYTES
from signing import Signer, TrustStore, Verifier
from signing.pki import load_certificates, load_key

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("sign")
@click.argument("file", type=_FILE)
@click.option("--key", "key_path", required=True, type=_FILE, help="PEM private key.")
@click.option("--cert", "cert_path", required=True, type=_FILE, help="PEM signer certificate.")
@click.option("--chain", "chain_path", type=_FILE, help="PEM intermediates to include.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout."
)
def sign(
    file: Path, key_path: Path, cert_path: Path, chain_path: Path | None, output: Path | None
) -> None:
    """Sign FILE (edoc, status or hub message) per PROTOCOL section 5."""
    try:
        signer = Signer(
            load_key(key_path),
            load_certificates(cert_path)[0],
            load_certificates(chain_path) if chain_path else (),
        )
    except (ValueError, IndexError) as exc:
        raise click.ClickException(f"cannot sign with {key_path} and {cert_path}: {exc}") from None
    try:
        signed = signer.sign(file.read_bytes())
    except Rejection as exc:
        raise click.ClickException(str(exc)) from None
    if output is None:
        sys.stdout.buffer.write(signed)
    else:
        output.write_bytes(signed)
        click.echo(f"signed {file} -> {output} ({signer.algorithm.name})", err=True)


def _parse_time(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time", param_hint="--at") from None
    # A time without an offset is read as UTC, the hub's clock.
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


@click.command("verify")
@click.argument("file", type=_FILE)
@click.option(
    "--trust", "trust_paths", required=True, multiple=True, type=_FILE, help="PEM trust anchors."
)
@click.option("--crl", "crl_paths", multiple=True, type=_FILE, help="PEM CRLs (repeatable).")
@click.option("--at", "at_text", help="Verification time, ISO 8601 (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def verify(
    file: Path,
    trust_paths: tuple[Path, ...],
    crl_paths: tuple[Path, ...],
    at_text: str | None,
    as_json: bool,
) -> None:
    """Verify FILE's signature and signer certificate; exit 1 with the rejection code if not."""
    at = _parse_time(at_text)
    try:
        trust = TrustStore.from_files(trust_paths, crl_paths)
    except ValueError as exc:
        raise click.ClickException(f"cannot load the trust configuration: {exc}") from None
    try:
        signer = Verifier(trust).verify(file.read_bytes(), at=at, max_bytes=DEFAULT_MAX_BYTES)
    except Rejection as exc:
        if as_json:
            click.echo(
                json.dumps({"valid": False, "code": exc.code, "reason": exc.reason, "signer": None})
            )
        else:
            click.echo(f"INVALID {exc.code}: {exc.reason}")
        sys.exit(1)
    if as_json:
        signer_info = {
            "subject_code": signer.subject_code,
            "fingerprint": signer.fingerprint,
            "algorithm": signer.algorithm.value,
            "subject": signer.certificate.subject.rfc4514_string(),
            "chain": [c.subject.rfc4514_string() for c in signer.chain],
            "not_after": signer.certificate.not_valid_after_utc.isoformat(),
        }
        click.echo(
            json.dumps(
                {"valid": True, "code": None, "reason": None, "signer": signer_info},
                ensure_ascii=False,
            )
        )
    else:
        click.echo(f"VALID signed by {signer.subject_code}")
        click.echo(f"  sha256     {signer.fingerprint}")
        click.echo(f"  algorithm  {signer.algorithm.name}")
        click.echo(f"  verified   at {at.isoformat()}")
