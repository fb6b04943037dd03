"""``axis status``: is the hub healthy, and how far behind is it?"""

from __future__ import annotations

from typing import Any

import click
import sqlalchemy as sa

from axis.audit.store import head as audit_head
from axis.broker.management import Management, ManagementError
from axis.broker.topology import INBOUND_QUEUE, QUARANTINE_QUEUE, inbox_queue
from axis.commands._context import echo_json, handle_errors, load_config, management
from axis.config import Config
from axis.db import make_engine
from axis.models import Agency, ChainHead

TOP_INBOXES = 10


def collect(config: Config, mgmt: Management) -> dict[str, Any]:
    """The hub's status as one JSON-ready mapping (what ``axis status --json`` prints)."""
    status: dict[str, Any] = {"broker": _broker(config, mgmt), "database": _database(config)}
    return status


def _broker(config: Config, mgmt: Management) -> dict[str, Any]:
    vhost = config.broker.vhost
    try:
        mgmt.overview()
        queues = {q["name"]: q for q in mgmt.list_queues(vhost)}
    except ManagementError as exc:
        return {"reachable": False, "error": str(exc), "vhost": vhost}
    prefix = inbox_queue("X")[:-1]
    inboxes = sorted(
        (
            (name[len(prefix) :], q["messages"])
            for name, q in queues.items()
            if name.startswith(prefix)
        ),
        key=lambda item: (-item[1], item[0]),
    )
    inbound = queues.get(INBOUND_QUEUE)
    quarantine = queues.get(QUARANTINE_QUEUE)
    return {
        "reachable": True,
        "vhost": vhost,
        "inbound": None if inbound is None else inbound["messages"],
        "inbound_consumers": None if inbound is None else inbound["consumers"],
        "quarantine": None if quarantine is None else quarantine["messages"],
        "inboxes": len(inboxes),
        "inbox_messages": sum(depth for _, depth in inboxes),
        "top_inboxes": [{"code": c, "messages": d} for c, d in inboxes[:TOP_INBOXES] if d],
    }


def _database(config: Config) -> dict[str, Any]:
    engine = make_engine(config.database.url, writer=False)
    try:
        with engine.connect() as conn:
            seq, last_hash = audit_head(conn)
            chain = conn.execute(
                sa.select(ChainHead.seq, ChainHead.hash, ChainHead.signed_at)
                .order_by(ChainHead.seq.desc())
                .limit(1)
            ).one_or_none()
            states = dict(
                conn.execute(sa.select(Agency.state, sa.func.count()).group_by(Agency.state)).all()
            )
    except sa.exc.SQLAlchemyError as exc:
        return {"reachable": False, "error": str(getattr(exc, "orig", None) or exc).splitlines()[0]}
    finally:
        engine.dispose()
    return {
        "reachable": True,
        "audit_seq": seq,
        "audit_hash": last_hash,
        "chain_head": None
        if chain is None
        else {"seq": chain.seq, "hash": chain.hash, "signed_at": chain.signed_at.isoformat()},
        "agencies": sum(states.values()),
        "suspended": states.get("suspended", 0),
    }


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


@click.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def status(ctx: click.Context, as_json: bool) -> None:
    """Broker and database health: queue depths, consumers, audit chain, agencies."""
    config = load_config(ctx)
    with management(config) as mgmt:
        result = collect(config, mgmt)
    if as_json:
        echo_json(result)
    else:
        _print(result)
    if not (result["broker"]["reachable"] and result["database"]["reachable"]):
        ctx.exit(1)


def _print(result: dict[str, Any]) -> None:
    b, d = result["broker"], result["database"]
    if b["reachable"]:
        click.echo(f"broker     reachable (vhost {b['vhost']!r})")
        click.echo(
            f"  axis.inbound     {_or_dash(b['inbound'])} message(s), "
            f"{_or_dash(b['inbound_consumers'])} consumer(s)"
        )
        click.echo(f"  axis.quarantine  {_or_dash(b['quarantine'])} message(s)")
        click.echo(f"  inboxes          {b['inboxes']}, {b['inbox_messages']} message(s) waiting")
        for item in b["top_inboxes"]:
            click.echo(f"    {item['code']:<16} {item['messages']}")
    else:
        click.echo(f"broker     UNREACHABLE: {b['error']}")
    if d["reachable"]:
        click.echo(f"database   reachable; {d['agencies']} agencies ({d['suspended']} suspended)")
        click.echo(f"  audit trail      last seq {d['audit_seq']}, hash {d['audit_hash'][:16]}…")
        head = d["chain_head"]
        if head is None:
            click.echo("  signed head      none yet")
        else:
            click.echo(f"  signed head      seq {head['seq']} at {head['signed_at']}")
    else:
        click.echo(f"database   UNREACHABLE: {d['error']}")
