"""axis.deliver.plan: what the hub publishes for a recorded batch, where, and in which order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import schemas
from axis.authorize import AcceptEdoc, AcceptStatus, KnownDocument, Retry, Unattributable
from axis.deliver import (
    CLAIMED_USER,
    REASON,
    RECEIPT_ID,
    RECEIVED_AT,
    SENDER,
    SIGNATURE_PROFILE,
    Outgoing,
    plan,
)
from axis.record import Inbound, Item
from axis.rejections import NotARecipient, SignatureInvalid

HUB = "axis-hub-test"
G22, G01, H41, H29 = "000.00.00.G22", "000.00.00.G01", "000.00.00.H41", "000.00.00.H29"
AT = datetime(2026, 11, 20, 3, 4, 5, 123456, tzinfo=UTC)
STAMP = "2026-11-20T03:04:05.123456Z"
DOCUMENT_ID = f"{G22},2026/11/20,101/VPCP-KSTT"


def inbound(
    n: int, user_id: str | None = G22, type: str | None = "edoc", body: bytes | None = None
) -> Inbound:
    return Inbound(
        tag=n,
        body=body or f"<edXML n='{n}'/>".encode(),
        user_id=user_id,
        message_id=f"msg-{n}",
        type=type,
        content_type="application/xml",
        received_at=AT,
    )


def header() -> schemas.EdocHeader:
    return schemas.EdocHeader(
        DOCUMENT_ID, G22, (H41, "@provinces"), "Về việc", 1, 0, 1, None, 0, None
    )


def edoc_item(n: int = 1) -> Item:
    return Item(
        inbound(n),
        "ab" * 32,
        f"rid-{n}",
        AcceptEdoc(header(), G22, (H41, H29), (), None),
        G22,
        DOCUMENT_ID,
        deliveries=(H41, H29),
        receipt=f"<AxisReceipt n='{n}'/>".encode(),
    )


def status_item() -> Item:
    status = schemas.Status.about(H41, DOCUMENT_ID, schemas.StatusCode.ACCEPTED, AT, addressee=G22)
    document = KnownDocument(DOCUMENT_ID, G22, "ab" * 32, "rid-1", (H41, H29), ())
    return Item(
        inbound(2, H41, "status"),
        "cd" * 32,
        "rid-2",
        AcceptStatus(status, H41, G22, document),
        H41,
        DOCUMENT_ID,
        deliveries=(G22,),
        receipt=b"<AxisReceipt n='2'/>",
    )


def rejection_item(n: int = 3, sender: str = G01) -> Item:
    return Item(
        inbound(n, sender),
        "ef" * 32,
        f"rid-{n}",
        SignatureInvalid("the document does not match the signed digest"),
        sender,
        receipt=f"<AxisRejection n='{n}'/>".encode(),
    )


def quarantine_item(user_id: str | None = "guest") -> Item:
    return Item(
        inbound(4, user_id, None),
        "01" * 32,
        "rid-4",
        Unattributable(f"user_id {user_id!r} is not a registered agency"),
    )


def test_deliveries_come_first_and_answers_last_in_batch_order() -> None:
    items = [edoc_item(1), status_item(), rejection_item(3), quarantine_item()]
    outgoing = plan(items, hub_user=HUB)
    assert [(o.exchange, o.routing_key, o.type, o.item) for o in outgoing] == [
        ("axis.deliver", H41, "edoc", items[0]),
        ("axis.deliver", H29, "edoc", items[0]),
        ("axis.deliver", G22, "status", items[1]),
        ("axis.deliver", G22, "receipt", items[0]),
        ("axis.deliver", H41, "receipt", items[1]),
        ("axis.deliver", G01, "rejection", items[2]),
        ("", "axis.quarantine", "", items[3]),
    ]


def test_a_delivery_is_the_senders_bytes_with_the_hub_headers() -> None:
    item = edoc_item()
    first, second, _ = plan([item], hub_user=HUB)
    assert first == Outgoing(
        exchange="axis.deliver",
        routing_key=H41,
        body=item.inbound.body,
        type="edoc",
        message_id="msg-1",
        headers={
            RECEIPT_ID: "rid-1",
            RECEIVED_AT: STAMP,
            SENDER: G22,
            SIGNATURE_PROFILE: "strict",
        },
        correlation_id=None,
        user_id=HUB,
        item=item,
    )
    assert second.body is item.inbound.body and second.routing_key == H29


def test_a_receipt_goes_to_the_sender_correlated_with_its_message_id() -> None:
    item = edoc_item()
    *_, receipt = plan([item], hub_user=HUB)
    assert receipt == Outgoing(
        exchange="axis.deliver",
        routing_key=G22,
        body=item.receipt,
        type="receipt",
        message_id="rid-1",
        headers={RECEIPT_ID: "rid-1"},
        correlation_id="msg-1",
        user_id=HUB,
        item=item,
    )


def test_a_rejection_goes_to_the_sender_and_nothing_is_delivered() -> None:
    item = rejection_item(sender=H29)
    [rejection] = plan([item], hub_user=HUB)
    assert (rejection.routing_key, rejection.type, rejection.body) == (
        H29,
        "rejection",
        item.receipt,
    )
    assert (rejection.correlation_id, rejection.user_id) == ("msg-3", HUB)


def test_a_rejection_without_a_signed_answer_publishes_nothing() -> None:
    item = rejection_item()
    item.receipt = None
    assert plan([item], hub_user=HUB) == []


def test_a_retry_redelivers_only_what_is_left_and_resends_the_receipt() -> None:
    item = edoc_item()
    item.outcome = Retry("rid-1", DOCUMENT_ID, (H29,))
    item.deliveries = (H29,)
    outgoing = plan([item], hub_user=HUB)
    assert [(o.routing_key, o.type, o.headers[RECEIPT_ID]) for o in outgoing] == [
        (H29, "edoc", "rid-1"),
        (G22, "receipt", "rid-1"),
    ]


def test_a_retried_status_is_delivered_as_a_status() -> None:
    item = status_item()
    item.outcome = Retry("rid-2", DOCUMENT_ID, (G22,))
    [delivery, _] = plan([item], hub_user=HUB)
    assert (delivery.routing_key, delivery.type) == (G22, "status")


def test_an_unattributable_message_goes_to_the_quarantine_queue_with_its_reason() -> None:
    item = quarantine_item(None)
    [quarantined] = plan([item], hub_user=HUB)
    assert quarantined == Outgoing(
        exchange="",
        routing_key="axis.quarantine",
        body=item.inbound.body,
        type="",
        message_id="msg-4",
        headers={
            RECEIPT_ID: "rid-4",
            REASON: "user_id None is not a registered agency",
            RECEIVED_AT: STAMP,
            CLAIMED_USER: "",
        },
        correlation_id=None,
        user_id=HUB,
        item=item,
    )
    assert plan([quarantine_item("guest")], hub_user=HUB)[0].headers[CLAIMED_USER] == "guest"


def test_a_rejected_status_is_answered_like_any_rejection() -> None:
    item = rejection_item(sender=H41)
    item.outcome = NotARecipient(f"{H41} is not a recipient of {DOCUMENT_ID}")
    [answer] = plan([item], hub_user=HUB)
    assert (answer.routing_key, answer.type) == (H41, "rejection")


def test_a_document_addressed_to_its_own_sender_is_delivered_to_it_before_its_receipt() -> None:
    to_self = replace(header(), recipients=(G22,))
    item = edoc_item()
    item.outcome = AcceptEdoc(to_self, G22, (G22,), (), None)
    item.deliveries = (G22,)
    outgoing = plan([item], hub_user=HUB)
    assert [(o.routing_key, o.type, o.body) for o in outgoing] == [
        (G22, "edoc", item.inbound.body),
        (G22, "receipt", item.receipt),
    ]


def test_a_recall_request_13_goes_from_the_document_sender_to_its_recipient() -> None:
    recall = schemas.Status.about(
        G22, DOCUMENT_ID, schemas.StatusCode.RECALL_REQUESTED, AT, addressee=H41
    )
    document = KnownDocument(DOCUMENT_ID, G22, "ab" * 32, "rid-1", (H41, H29), ())
    item = Item(
        inbound(5, G22, "status"),
        "cd" * 32,
        "rid-5",
        AcceptStatus(recall, G22, H41, document),
        G22,
        DOCUMENT_ID,
        deliveries=(H41,),
        receipt=b"<AxisReceipt n='5'/>",
    )
    outgoing = plan([item], hub_user=HUB)
    assert [(o.routing_key, o.type, o.headers.get(SENDER)) for o in outgoing] == [
        (H41, "status", G22),
        (G22, "receipt", None),
    ]


def test_an_empty_batch_publishes_nothing() -> None:
    assert plan([], hub_user=HUB) == []
