"""``axis audit export`` and ``axis audit check``: a document's evidence bundle, out and back.

``export`` reads the hub's database and archive; ``check`` needs nothing but the zip
and the trust anchor, so an auditor, a court or an agency can run it anywhere.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from cryptography import x509

from axis.audit.bundle import (
    BundleError,
    Evidence,
    ExportError,
    check_bundle,
    export_bundle,
    fingerprint,
    write_zip,
)
from axis.audit.chain import format_time
from axis.commands._context import handle_errors, load_config, quiet_logs
from axis.config import ConfigError
from schemas._common import VIETNAM
from signing import TrustStore

LOCAL_ZONE = VIETNAM


def _shown(at: datetime | None, utc: bool) -> str:
    """A time as ``axis audit trail`` shows it: Asia/Ho_Chi_Minh, or UTC with ``--utc``."""
    if at is None:
        return "-"
    return format_time(at) if utc else at.astimezone(LOCAL_ZONE).isoformat(timespec="microseconds")


@click.command("export")
@click.argument("document_id")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The bundle to write (a .zip).",
)
@click.option(
    "--sign-head/--no-sign-head",
    default=True,
    help="When no signed chain head covers the document's last event yet, sign one "
    "with the hub's key (default), as the router would; else end at the newest head.",
)
@click.option(
    "--sender",
    metavar="CODE",
    help="Whose document: a DocumentId is unique per sender (default: the first received).",
)
@click.pass_context
@handle_errors
def export(
    ctx: click.Context, document_id: str, out: Path, sign_head: bool, sender: str | None
) -> None:
    """Write DOCUMENT_ID's evidence bundle: the original signed bytes, the hub's
    receipts, the document's audit events with the chain links up to a signed chain
    head, and the hub's certificate. Check it anywhere with ``axis audit check``."""
    from axis.archive import Archive
    from axis.db import make_engine
    from axis.receipts import ReceiptWriter
    from axis.service import hub_signer

    config = load_config(ctx)
    quiet_logs(config)
    writer = None
    if sign_head:
        try:
            writer = ReceiptWriter(hub_signer(config))
        except (ConfigError, OSError, ValueError):
            writer = None  # an auditor without the hub's key still gets a bundle
    # Reads through a reader: on SQLite a writer's transaction would hold the hub's
    # write lock for as long as the export reads.
    engine = make_engine(config.database.url, writer=False)
    write_engine = make_engine(config.database.url) if writer is not None else None
    archive = Archive(config.hub.archive_dir)
    try:
        result = export_bundle(
            engine, archive, document_id, sender=sender, writer=writer, write_engine=write_engine
        )
    except ExportError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        archive.close()
        engine.dispose()
        if write_engine is not None:
            write_engine.dispose()
    partial = out.with_name(out.name + ".part")
    write_zip(result.files, partial, when=result.head_signed_at)
    partial.replace(out)
    size = out.stat().st_size
    links = result.head_seq - result.first_seq + 1
    click.echo(
        f"wrote {out} ({size:,} bytes): {result.events} events of {document_id}, "
        f"{links:,} chain links from seq {result.first_seq} to the signed chain head "
        f"at seq {result.head_seq}" + (" (signed now)" if result.signed_head else "")
    )
    if result.omitted:
        click.echo(
            f"warning: {result.omitted} later events are not covered by a signed chain head "
            "yet and were left out; export again after the hub signs its next head",
            err=True,
        )


@click.command("check")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--trust",
    "anchors",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A trust anchor (PEM) the sender's and the hub's certificates chain to; repeatable.",
)
@click.option(
    "--crl",
    "crls",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CRL (PEM) of an anchor; repeatable.",
)
@click.option(
    "--hub-name",
    default="axis-hub",
    show_default=True,
    help="The CN of the hub's certificate.",
)
@click.option(
    "--hub-cert",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Pin the hub's certificate (PEM) instead of trusting any with --hub-name.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--utc", is_flag=True, help="Show times in UTC instead of Asia/Ho_Chi_Minh.")
def check(
    bundle: Path,
    anchors: tuple[Path, ...],
    crls: tuple[Path, ...],
    hub_name: str,
    hub_cert: Path | None,
    as_json: bool,
    utc: bool,
) -> None:
    """Check an evidence bundle offline: signatures, hashes and chain links.

    Needs only the zip and the trust anchor: no database, no broker, no hub
    configuration. Exits 0 when everything verifies, 1 naming what failed.
    """
    try:
        trust = TrustStore.from_files(anchors, crls)
        pinned = None
        if hub_cert is not None:
            pinned = fingerprint(x509.load_pem_x509_certificate(hub_cert.read_bytes()))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    try:
        evidence = check_bundle(
            bundle.read_bytes(), trust, hub_name=hub_name, hub_fingerprint=pinned
        )
    except BundleError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "file": exc.file, "reason": exc.reason}))
        else:
            click.echo(f"evidence bundle INVALID: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(_as_json(evidence, utc), ensure_ascii=False, indent=2))
    else:
        _print(evidence, utc)


def _as_json(e: Evidence, utc: bool) -> dict[str, Any]:
    return {
        "ok": True,
        "document_id": e.document_id,
        "subject": e.subject,
        "sender": e.sender,
        "signer": {"subject": e.signer_subject, "fingerprint": e.signer_fingerprint},
        "sha256": e.sha256,
        "size": e.size,
        "received_at": _shown(e.received_at, utc),
        "receipt_id": e.receipt_id,
        "audit_seq": e.audit_seq,
        "recipients": [
            {
                "recipient": d.recipient,
                "outcome": d.outcome,
                "delivered_at": _shown(d.delivered_at, utc) if d.delivered_at else None,
                "seq": d.seq,
            }
            for d in e.deliveries
        ],
        "statuses": [
            {
                "sender": s.sender,
                "code": s.code,
                "received_at": _shown(s.received_at, utc),
                "stated_at": _shown(s.stated_at, utc),
                "description": s.description,
                "receipt_id": s.receipt_id,
                "seq": s.seq,
            }
            for s in e.statuses
        ],
        "events": [
            {
                "seq": link.seq,
                "at": _shown(link.at, utc),
                "event": link.kind,
                "sender": link.sender,
                "recipient": link.recipient,
                "code": link.code,
                "receipt_id": link.receipt_id,
                "hash": link.hash,
            }
            for link in e.events
        ],
        "notes": list(e.notes),
        "chain": {
            "first_seq": e.chain_first,
            "links": e.head_seq - e.chain_first + 1,
            "head_seq": e.head_seq,
            "head_hash": e.head_hash,
            "head_signed_at": _shown(e.head_signed_at, utc),
        },
        "hub": {"subject": e.hub_subject, "fingerprint": e.hub_fingerprint},
        "trust_anchor": e.anchor_subject,
    }


def _print(e: Evidence, utc: bool) -> None:
    echo = click.echo
    echo(f"evidence bundle OK: {e.document_id}")
    echo(f"  subject     {e.subject}")
    echo(f"  sender      {e.sender}, signed by {e.signer_subject} (SHA-256 {e.signer_fingerprint})")
    echo(f"  document    SHA-256 {e.sha256}, {e.size:,} bytes")
    echo(
        f"  received    {_shown(e.received_at, utc)}  receipt {e.receipt_id}, audit #{e.audit_seq}"
    )
    for d in e.deliveries:
        if d.outcome != "delivered":
            state = f"not delivered ({d.outcome})"
        elif d.delivered_at is None:
            state = "no delivery recorded up to the signed head"
        else:
            state = f"delivered {_shown(d.delivered_at, utc)}"
        echo(f"  recipient   {d.recipient:<15} {state}")
    for s in e.statuses:
        said = f" {s.description}" if s.description else ""
        echo(f"  status      {s.sender:<15} {s.code}  {_shown(s.received_at, utc)}{said}")
    for note in e.notes:
        echo(f"  note        {note}")
    echo(
        f"  chain       {len(e.events)} events linked through {e.head_seq - e.chain_first + 1:,} "
        f"links to the chain head #{e.head_seq} the hub signed {_shown(e.head_signed_at, utc)}"
    )
    echo(f"  hub         {e.hub_subject} (SHA-256 {e.hub_fingerprint})")
    echo(f"  trusted     through {e.anchor_subject}")
    start = e.events[0].at
    for link in sorted(e.events, key=lambda link: (link.at, link.seq)):
        who = link.sender or ""
        if link.recipient:
            who += f" → {link.recipient}"
        code = f" {link.code}" if link.code else ""
        after = (link.at - start).total_seconds()
        when = _shown(link.at, utc)
        echo(f"  #{link.seq:<8} {when}  +{after:9.3f}s  {link.kind:<11}{code:<4} {who}")
