"""Real hub traffic for the evidence-bundle tests (importable, unlike a conftest).

A hub from ``tests/hub/conftest.py`` (router in a thread, its own vhost and SQLite
database), agencies talking to it with the Python SDK: a document to two
recipients, their automatic status 01, a 06 from one, then a revoke by the sender.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import schemas
from axis.models import AuditEvent, ChainHead

_spec = importlib.util.spec_from_file_location(
    "axis_tests_hub_support", Path(__file__).parents[2] / "hub" / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
hub_support = sys.modules.get(_spec.name)
if hub_support is None:
    hub_support = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = hub_support
    _spec.loader.exec_module(hub_support)


PRIVATE_SUBJECT = "Về việc bí mật của cơ quan khác"


@dataclass
class Traffic:
    """What the agencies did, for the tests to compare the bundle with."""

    hub: Any
    document_id: str
    sender: str
    recipients: tuple[str, str]
    body: bytes
    receipt_id: str
    revoke_id: str


def events(hub: Any, document_id: str) -> list[Any]:
    with hub.engine.connect() as conn:
        return conn.execute(
            sa.select(AuditEvent.seq, AuditEvent.event, AuditEvent.code)
            .where(AuditEvent.document_id == document_id)
            .order_by(AuditEvent.seq)
        ).all()


def run_traffic(hub: Any) -> Traffic:
    """Send, deliver, acknowledge (01), complete (06) and revoke one document."""
    sender = hub.register("BSEND")
    first = hub.register("BRCPA")
    second = hub.register("BRCPB")
    bystander = hub.register("BOTHR")
    with (
        hub.client(sender) as s,
        hub.client(first) as a,
        hub.client(second) as b,
        hub.client(bystander) as o,
    ):
        edoc = sample(sender.code, [first.code, second.code])
        sent = s.send(edoc)
        for recipient in (a, b):
            [delivery] = list(recipient.receive(timeout=3))  # status 01 goes back by itself
            assert delivery.verified and delivery.kind == "edoc"
        # Another agency's document in the middle of this one's events: in the bundle
        # it may only appear as a digest.
        o.send(sample(bystander.code, [sender.code], subject=PRIVATE_SUBJECT))
        a.send_status(edoc.document_id, "06", "Đã hoàn thành")
        revoke = sample(
            sender.code,
            [first.code],
            business=schemas.Business(
                schemas.BusinessDocType.REVOKE, "Ban hành nhầm", edoc.document_id
            ),
        )
        revoked = s.send(revoke)
        # Receipts are stored once the broker has confirmed their publishes, with
        # the DELIVERED events: wait for all of them.
        hub.wait_until(
            lambda: (
                [e.event for e in events(hub, edoc.document_id)].count("DELIVERED") == 5
                and "DELIVERED" in {e.event for e in events(hub, revoke.document_id)}
            )
        )
    return Traffic(
        hub,
        edoc.document_id,
        sender.code,
        (first.code, second.code),
        sent.body,
        sent.receipt.receipt_id,
        revoked.receipt.receipt_id,
    )


_NUMBERS = iter(range(int(time.time()) % 100_000, 10**9))


def sample(sender: str, recipients: list[str], **kwargs: Any) -> schemas.Edoc:
    from schemas.samples import sample_edoc

    return sample_edoc(sender, recipients, document_number=next(_NUMBERS), **kwargs)


def wait_for_head(hub: Any, seq: int, timeout: float = 15.0) -> None:
    """Until the router has signed a chain head at or after ``seq``."""

    def covered() -> bool:
        with hub.engine.connect() as conn:
            return (conn.execute(sa.select(sa.func.max(ChainHead.seq))).scalar() or 0) >= seq

    hub.wait_until(covered, timeout)
