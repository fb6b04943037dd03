"""End to end through the real router, RabbitMQ and database (PROTOCOL sections 3–6)."""

from __future__ import annotations

import pytest
import sqlalchemy.exc

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


def test_a_message_that_breaks_the_hub_is_set_aside_and_the_rest_goes_through(
    hub, monkeypatch
) -> None:
    a, b, poison = hub.register("A"), hub.register("B"), hub.register("P")
    answer = hub.router.pipeline.answer

    def failing_answer(items, stored):
        if any(item.sender == poison.code for item in items):
            raise RuntimeError("a bug the hub did not foresee")
        return answer(items, stored)

    monkeypatch.setattr(hub.router.pipeline, "answer", failing_answer)
    poison.publish(poison.sign(poison.edoc([b.code])))
    good = a.sign(a.edoc([b.code]))
    a.publish(good)
    assert isinstance(hub.answer(a), schemas.AxisReceipt)
    assert good in [m.body for m in b.take(2, timeout=5)]
    hub.wait_until(lambda: _quarantined(hub) == 1)


def test_data_the_database_refuses_is_set_aside_not_retried_forever(hub, monkeypatch) -> None:
    # Waiting out an outage is right; waiting out a value the database refuses would
    # stall the hub (a 201-character message_id did, before it was checked).
    a, b, poison = hub.register("A"), hub.register("B"), hub.register("P")
    handle = hub.router.pipeline.handle

    def refusing_handle(batch, **kwargs):
        if any(message.user_id == poison.code for message in batch):
            raise sqlalchemy.exc.DataError("INSERT INTO documents", {}, ValueError("too long"))
        return handle(batch, **kwargs)

    monkeypatch.setattr(hub.router.pipeline, "handle", refusing_handle)
    poison.publish(poison.sign(poison.edoc([b.code])))
    good = a.sign(a.edoc([b.code]))
    a.publish(good)
    assert isinstance(hub.answer(a), schemas.AxisReceipt)
    assert good in [m.body for m in b.take(1, timeout=5)]
    hub.wait_until(lambda: _quarantined(hub) == 1)


def _quarantined(hub) -> int:
    with hub.broker.management() as mgmt:
        return int(mgmt.queue(hub.broker.vhost, "axis.quarantine")["messages"])
