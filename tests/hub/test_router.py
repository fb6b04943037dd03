"""End to end through the real router, RabbitMQ and database (PROTOCOL sections 3–6)."""

from __future__ import annotations

import pytest

import schemas
from axis.audit import store as audit

pytestmark = pytest.mark.parametrize("hub", ["sqlite", "postgres"], indirect=True)


def test_two_agencies_exchange_a_document_and_the_bytes_arrive_unchanged(hub) -> None:
    a = hub.register("A")
    b = hub.register("B")
    body = a.sign(a.edoc([b.code]))
    message_id = a.publish(body)

    [delivered] = b.take()
    assert delivered.type == "edoc"
    assert delivered.body == body
    assert delivered.headers["x-axis-sender"] == a.code
    assert delivered.headers["x-axis-received-at"].endswith("Z")

    [answer] = a.take()
    assert answer.type == "receipt"
    receipt = schemas.parse_receipt(answer.body)
    assert receipt.message_id == message_id
    assert receipt.receipt_id == delivered.headers["x-axis-receipt-id"]
    assert [r.organ_id for r in receipt.recipients] == [b.code]
    with hub.engine.connect() as conn:
        assert audit.verify(conn).ok
        kinds = [link.kind for link in audit.trail(conn, receipt.document_id)]
    hub.wait_until(
        lambda: "DELIVERED" in kinds or _kinds(hub, receipt.document_id).count("DELIVERED") == 1
    )


def _kinds(hub, document_id: str) -> list[str]:
    with hub.engine.connect() as conn:
        return [link.kind for link in audit.trail(conn, document_id)]
