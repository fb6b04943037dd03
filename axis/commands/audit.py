"""``axis audit``: check the audit trail and read what happened to a document."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from zoneinfo import ZoneInfo

import click

from axis.audit import store
from axis.audit.chain import format_time
from axis.audit.verifier import verify_trail
from axis.commands._context import handle_errors, load_config, quiet_logs
from axis.db import make_engine
from signing import Verifier

LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


@click.group("audit")
def group() -> None:
    """Check the tamper-evident audit trail and follow documents through it."""


@group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
@handle_errors
def verify(ctx: click.Context, as_json: bool) -> None:
    """Recompute the whole hash chain and check the hub's signed chain heads.

    Exits 0 when every link and signed head verifies, 1 naming the first broken or
    missing link otherwise.
    """
    from axis.service import trust_store

    config = load_config(ctx)
    quiet_logs(config)
    engine = make_engine(config.database.url, writer=False)
    with engine.connect() as conn:
        result = verify_trail(conn, Verifier(trust_store(config)))
    engine.dispose()
    report = result.report
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "checked": report.checked,
                    "last_seq": report.last_seq,
                    "last_hash": report.last_hash,
                    "signed_heads": report.heads_checked,
                    "seconds": round(result.seconds, 3),
                    "events_per_second": round(result.rate),
                    "broken_seq": report.problem.seq if report.problem else None,
                    "reason": report.problem.reason if report.problem else None,
                }
            )
        )
    elif report.ok:
        click.echo(
            f"audit trail OK: {report.checked} events up to seq {report.last_seq}, "
            f"{report.heads_checked} signed heads verified "
            f"({result.rate:,.0f} events/s); head {report.last_hash}"
        )
    else:
        assert report.problem is not None
        click.echo(
            f"audit trail BROKEN at seq {report.problem.seq}: {report.problem.reason}", err=True
        )
    if not report.ok:
        sys.exit(1)


def _shown(at: datetime, utc: bool) -> str:
    return format_time(at) if utc else at.astimezone(LOCAL_ZONE).isoformat(timespec="microseconds")


@group.command("trail")
@click.argument("document_id")
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
@click.option("--utc", is_flag=True, help="Show times in UTC instead of Asia/Ho_Chi_Minh.")
@click.pass_context
@handle_errors
def trail(ctx: click.Context, document_id: str, as_json: bool, utc: bool) -> None:
    """Every audit event of DOCUMENT_ID, in order, with the time since it was received."""
    config = load_config(ctx)
    quiet_logs(config)
    engine = make_engine(config.database.url, writer=False)
    with engine.connect() as conn:
        # By time, not by sequence: a delivery's record can follow the recipient's
        # status 01 in the chain (it is written with the next batch), not in time.
        links = sorted(store.trail(conn, document_id), key=lambda link: (link.at, link.seq))
    engine.dispose()
    if not links:
        raise click.ClickException(f"no audit event names {document_id}")
    start = links[0].at
    if as_json:
        events = [
            {
                "seq": link.seq,
                "at": _shown(link.at, utc),
                "event": link.kind,
                "after_s": round((link.at - start).total_seconds(), 6),
                "sender": link.sender,
                "recipient": link.recipient,
                "code": link.code,
                "receipt_id": link.receipt_id,
                "detail": json.loads(link.detail) if link.detail else {},
                "hash": link.hash,
            }
            for link in links
        ]
        click.echo(
            json.dumps({"document_id": document_id, "events": events}, ensure_ascii=False, indent=2)
        )
        return
    click.echo(f"{document_id}")
    for link in links:
        who = link.sender or ""
        if link.recipient:
            who += f" → {link.recipient}"
        code = f" {link.code}" if link.code else ""
        after = (link.at - start).total_seconds()
        when = _shown(link.at, utc)
        click.echo(f"  #{link.seq:<8} {when}  +{after:9.3f}s  {link.kind:<11}{code:<4} {who}")
