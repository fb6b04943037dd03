"""axis.pipeline: batches through parse → validate → verify → authorize → record, no broker.

Each test drives a :class:`~axis.pipeline.Pipeline` built from objects (see
``tests/core/conftest.py``) with :class:`~axis.record.Inbound` batches, on SQLite and
PostgreSQL, and checks what it recorded and what it would publish.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

import schemas
from axis import registry
from axis.audit import store as audit
from axis.audit.verifier import head_checker
from axis.authorize import AcceptEdoc, AcceptStatus, Retry, Unattributable
from axis.deliver import (
    CLAIMED_USER,
    REASON,
    RECEIPT_ID,
    RECEIVED_AT,
    SENDER,
    SIGNATURE_PROFILE,
)
from axis.models import Delivery
from axis.rejections import Rejection
from schemas import Business, BusinessDocType
from signing import Signer
from signing.pki import make_leaf

G22, G01, H41, H29, H58 = (
    "000.00.00.G22",
    "000.00.00.G01",
    "000.00.00.H41",
    "000.00.00.H29",
    "000.00.00.H58",
)
PROVINCES = (H29, H41, H58)
CONFIRMED_AT = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def events(core, *kinds: str) -> list[sa.Row]:
    """The audit events of the given kinds (all when none), in chain order."""
    rows = core.rows(
        "SELECT seq, event, receipt_id, document_id, sender, recipient, code FROM audit_events "
        "ORDER BY seq"
    )
    return [r for r in rows if not kinds or r.event in kinds]


def deliveries(core, receipt_id: str) -> dict[str, datetime | None]:
    with core.engine.connect() as conn:
        rows = conn.execute(
            sa.select(Delivery.recipient, Delivery.delivered_at).where(
                Delivery.receipt_id == receipt_id
            )
        ).all()
    return {r.recipient: r.delivered_at for r in rows}


def stored_receipt(core, receipt_id: str) -> bytes | None:
    rows = core.rows("SELECT body FROM receipts WHERE receipt_id = :r", r=receipt_id)
    return bytes(rows[0].body) if rows else None


# accepted documents


def test_an_accepted_edoc_is_recorded_with_its_deliveries_and_received_event(core) -> None:
    edoc, body = core.edoc(G22, [H41, "@provinces"])
    message = core.inbound(body, G22)
    [item], _ = core.handle(message)

    assert isinstance(item.outcome, AcceptEdoc)
    assert item.deliveries == (H41, H29, H58)
    [document] = core.rows("SELECT * FROM documents")
    assert (
        document.document_id,
        document.receipt_id,
        document.message_id,
        document.sender,
        document.sha256,
        document.size,
        document.audit_seq,
        document.subject,
        document.state,
    ) == (
        edoc.document_id,
        item.receipt_id,
        message.message_id,
        G22,
        item.sha256,
        len(body),
        1,
        edoc.subject,
        "active",
    )
    assert deliveries(core, item.receipt_id) == {H41: None, H29: None, H58: None}
    [received] = events(core)
    assert (received.event, received.receipt_id, received.document_id, received.sender) == (
        "RECEIVED",
        item.receipt_id,
        edoc.document_id,
        G22,
    )
    assert (item.link.seq, item.link.kind) == (1, "RECEIVED")
    entry = core.rows("SELECT * FROM archive_entries WHERE sha256 = :s", s=item.sha256)
    assert len(entry) == 1


def test_the_receipt_is_hub_signed_and_names_the_bytes_chain_and_recipients(core) -> None:
    core.suspend(H58)
    edoc, body = core.edoc(G22, [H41, "@provinces"])
    message = core.inbound(body, G22)
    [item], _ = core.handle(message)

    receipt = core.receipt(item.receipt)
    assert receipt == schemas.AxisReceipt(
        receipt_id=item.receipt_id,
        message_id=message.message_id,
        kind="edoc",
        sender=G22,
        sha256=item.sha256,
        received_at=message.received_at,
        audit_seq=item.link.seq,
        chain_hash=item.link.hash,
        recipients=(
            schemas.RecipientOutcome(H41),
            schemas.RecipientOutcome(H29),
            schemas.RecipientOutcome(H58, "suspended"),
        ),
        document_id=edoc.document_id,
        signature_profile="strict",
    )
    with core.engine.connect() as conn:
        assert audit.head(conn) == (item.link.seq, item.link.hash)


def test_the_outgoing_plan_delivers_unchanged_bytes_first_and_the_receipt_last(core) -> None:
    _, body = core.edoc(G22, ["@provinces"])
    message = core.inbound(body, G22)
    [item], outgoing = core.handle(message)

    assert [(o.exchange, o.routing_key, o.type) for o in outgoing] == [
        ("axis.deliver", H29, "edoc"),
        ("axis.deliver", H41, "edoc"),
        ("axis.deliver", H58, "edoc"),
        ("axis.deliver", G22, "receipt"),
    ]
    *to_recipients, receipt = outgoing
    for o in to_recipients:
        assert o.body == body
        assert o.headers == {
            RECEIPT_ID: item.receipt_id,
            RECEIVED_AT: audit_time(message.received_at),
            SENDER: G22,
            SIGNATURE_PROFILE: "strict",
        }
        assert (o.message_id, o.user_id, o.correlation_id) == (message.message_id, "axis-hub", None)
    assert receipt.body == item.receipt
    assert receipt.headers == {RECEIPT_ID: item.receipt_id}
    assert (receipt.message_id, receipt.correlation_id, receipt.user_id) == (
        item.receipt_id,
        message.message_id,
        "axis-hub",
    )
    assert all(o.item is item for o in outgoing)


def audit_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_confirm_records_each_delivery_once_and_stores_the_receipt(core) -> None:
    core.pipeline.clock = lambda: CONFIRMED_AT
    _, body = core.edoc(G22, [H41, H29])
    items, _ = core.handle(core.inbound(body, G22))
    core.pipeline.confirm(items)
    core.pipeline.confirm(items)  # a repeated confirm records nothing more

    [item] = items
    delivered = events(core, "DELIVERED")
    assert sorted((e.recipient, e.receipt_id, e.sender) for e in delivered) == [
        (H29, item.receipt_id, G22),
        (H41, item.receipt_id, G22),
    ]
    assert [e.seq for e in delivered] == [2, 3]
    assert deliveries(core, item.receipt_id) == {H41: CONFIRMED_AT, H29: CONFIRMED_AT}
    assert stored_receipt(core, item.receipt_id) == item.receipt
    with core.engine.connect() as conn:
        assert audit.verify(conn).ok


# crash recovery and retries


def test_after_a_crash_before_confirm_the_same_messages_redeliver_with_the_same_receipt(
    core,
) -> None:
    messages = []
    for recipients in ([H41, H29], ["@provinces"]):
        _, body = core.edoc(G22, recipients)
        messages.append(core.inbound(body, G22))
    first, first_out = core.handle(*messages)
    # The router died here: nothing confirmed, nothing acked. The broker redelivers
    # to a new router process, which has nothing in flight.
    core.pipeline.in_flight.clear()
    again = [core.inbound(m.body, m.user_id, message_id=m.message_id) for m in messages]
    second, second_out = core.handle(*again)

    for before, after in zip(first, second, strict=True):
        assert isinstance(after.outcome, Retry)
        assert (after.outcome.receipt_id, after.outcome.document_id) == (
            before.receipt_id,
            before.document_id,
        )
        assert sorted(after.deliveries) == sorted(before.deliveries)  # every recipient again
        assert after.receipt_id == before.receipt_id
        assert after.link is None
        receipt, original = core.receipt(after.receipt), core.receipt(before.receipt)
        assert receipt == original  # rebuilt from the record: same ids, seq, hash, time

    def published(outgoing) -> list[tuple]:
        return sorted(
            (
                o.routing_key,
                o.type,
                o.headers[RECEIPT_ID],
                o.headers.get(RECEIVED_AT),  # redelivered copies carry the first receipt time
                o.body if o.type == "edoc" else b"",
            )
            for o in outgoing
        )

    assert published(second_out) == published(first_out)
    assert len(events(core, "RECEIVED")) == 2
    assert core.scalar("SELECT count(*) FROM documents") == 2

    core.pipeline.confirm(second)
    assert len(events(core, "DELIVERED")) == 2 + 3
    for item in first:
        assert set(deliveries(core, item.receipt_id).values()) != {None}
        assert stored_receipt(core, item.receipt_id) is not None

    third, third_out = core.handle(*again)
    for before, after in zip(first, third, strict=True):
        assert after.outcome == Retry(
            before.receipt_id, before.document_id, (), before.inbound.received_at
        )
        assert after.receipt == stored_receipt(core, before.receipt_id)
    assert [(o.routing_key, o.type) for o in third_out] == [(G22, "receipt"), (G22, "receipt")]
    with core.engine.connect() as conn:
        assert audit.verify(conn).ok


def test_a_retry_after_confirm_resends_the_stored_receipt_and_delivers_nothing(core) -> None:
    _, body = core.edoc(G22, [H41])
    first, _ = core.handle(core.inbound(body, G22))
    core.pipeline.confirm(first)
    [retry], outgoing = core.handle(core.inbound(body, G22))

    assert retry.outcome == Retry(
        first[0].receipt_id, first[0].document_id, (), first[0].inbound.received_at
    )
    assert retry.receipt == first[0].receipt == stored_receipt(core, first[0].receipt_id)
    assert [(o.routing_key, o.type, o.body) for o in outgoing] == [(G22, "receipt", retry.receipt)]
    core.pipeline.confirm([retry])
    assert [e.event for e in events(core)] == ["RECEIVED", "DELIVERED"]


def test_a_partly_confirmed_document_redelivers_only_to_the_unconfirmed(core) -> None:
    _, body = core.edoc(G22, [H41, H29])
    [item], _ = core.handle(core.inbound(body, G22))
    with core.engine.begin() as conn:
        conn.execute(
            sa.update(Delivery).where(Delivery.recipient == H41).values(delivered_at=CONFIRMED_AT)
        )
    core.pipeline.in_flight.clear()  # a new router, after a crash
    [retry], outgoing = core.handle(core.inbound(body, G22))
    assert retry.outcome == Retry(
        item.receipt_id, item.document_id, (H29,), item.inbound.received_at
    )
    assert [(o.routing_key, o.type) for o in outgoing] == [(H29, "edoc"), (G22, "receipt")]


def test_the_same_document_twice_in_one_batch_is_recorded_once(core) -> None:
    _, body = core.edoc(G22, [H41, H29])
    first, second = core.inbound(body, G22), core.inbound(body, G22)
    items, outgoing = core.handle(first, second)

    assert isinstance(items[0].outcome, AcceptEdoc)
    assert items[1].outcome == Retry(
        items[0].receipt_id, items[0].document_id, (), items[0].inbound.received_at
    )
    assert core.receipt(items[1].receipt) == core.receipt(items[0].receipt)
    assert [(o.routing_key, o.type) for o in outgoing] == [
        (H41, "edoc"),
        (H29, "edoc"),
        (G22, "receipt"),
        (G22, "receipt"),
    ]
    assert [o.correlation_id for o in outgoing[2:]] == [first.message_id, second.message_id]
    assert core.scalar("SELECT count(*) FROM documents") == 1
    assert core.scalar("SELECT count(*) FROM archive_entries") == 1
    core.pipeline.confirm(items)
    assert len(events(core, "DELIVERED")) == 2
    assert core.scalar("SELECT count(*) FROM receipts") == 1


def test_a_revoke_in_the_same_batch_as_its_original_is_accepted_and_marks_it(core) -> None:
    original, body = core.edoc(G22, [H41])
    _, revoke_body = core.edoc(
        G22,
        [H41],
        business=Business(BusinessDocType.REVOKE, "Ban hành nhầm", original.document_id),
    )
    items, _ = core.handle(core.inbound(body, G22), core.inbound(revoke_body, G22))

    assert [type(i.outcome) for i in items] == [AcceptEdoc, AcceptEdoc]
    assert items[1].outcome.business_event == "REVOKED"
    states = {r.document_id: (r.state, r.acts_on) for r in core.rows("SELECT * FROM documents")}
    assert states == {
        original.document_id: ("revoked", None),
        items[1].document_id: ("active", original.document_id),
    }
    assert [(e.event, e.document_id, e.receipt_id) for e in events(core)] == [
        ("RECEIVED", original.document_id, items[0].receipt_id),
        ("RECEIVED", items[1].document_id, items[1].receipt_id),
        ("REVOKED", original.document_id, items[1].receipt_id),
    ]
    assert items[1].link.seq == 2


# statuses


def test_a_status_from_a_recipient_is_forwarded_to_the_document_sender(core) -> None:
    edoc, body = core.edoc(G22, [H41])
    core.pipeline.confirm(core.handle(core.inbound(body, G22))[0])
    status_body = core.status(H41, edoc, schemas.StatusCode.ACCEPTED)
    message = core.inbound(status_body, H41, type="status")
    [item], outgoing = core.handle(message)

    assert isinstance(item.outcome, AcceptStatus) and item.outcome.addressee == G22
    assert [(o.routing_key, o.type) for o in outgoing] == [(G22, "status"), (H41, "receipt")]
    assert outgoing[0].body == status_body
    receipt = core.receipt(item.receipt)
    assert (receipt.kind, receipt.document_id, receipt.recipients) == (
        "status",
        edoc.document_id,
        (schemas.RecipientOutcome(G22),),
    )
    [event] = events(core, "STATUS")
    assert (event.sender, event.recipient, event.code, event.document_id) == (
        H41,
        G22,
        "03",
        edoc.document_id,
    )
    core.pipeline.confirm([item])
    [again], again_out = core.handle(core.inbound(status_body, H41, type="status"))
    assert again.outcome == Retry(item.receipt_id, edoc.document_id, (), item.inbound.received_at)
    assert again.receipt == item.receipt
    assert [(o.routing_key, o.type) for o in again_out] == [(H41, "receipt")]


def test_a_status_not_confirmed_before_a_crash_is_redelivered_with_a_rebuilt_receipt(core) -> None:
    edoc, body = core.edoc(G22, [H41])
    core.pipeline.confirm(core.handle(core.inbound(body, G22))[0])
    status_body = core.status(H41, edoc)
    [item], _ = core.handle(core.inbound(status_body, H41, type="status"))
    core.pipeline.in_flight.clear()  # a new router, after a crash
    [again], outgoing = core.handle(core.inbound(status_body, H41, type="status"))
    assert again.outcome == Retry(
        item.receipt_id, edoc.document_id, (G22,), item.inbound.received_at
    )
    assert core.receipt(again.receipt) == core.receipt(item.receipt)
    assert [(o.routing_key, o.type, o.headers[RECEIPT_ID]) for o in outgoing] == [
        (G22, "status", item.receipt_id),
        (H41, "receipt", item.receipt_id),
    ]


# rejections


def revoked_g01(core) -> None:
    with core.engine.begin() as conn:
        fp = registry.fingerprint(core.pki.agencies[G01].certificate)
        registry.revoke_certificate(conn, fp, datetime.now(UTC))


def sent_by(core, code: str, **kwargs) -> tuple[bytes, str]:
    return core.edoc(code, [H41], **kwargs)[1], code


def unregistered_key(core) -> tuple[bytes, str]:
    leaf = make_leaf(G22, core.pki.ca)
    edoc = schemas.samples.sample_edoc(G22, [H41], document_number=999)
    return Signer(leaf.key, leaf.certificate).sign(schemas.to_element(edoc)), G22


def tampered(core) -> tuple[bytes, str]:
    _, body = core.edoc(G22, [H41], subject="Về việc kiểm tra số 1")
    return body.replace("kiểm tra số 1".encode(), "kiểm tra số 2".encode()), G22


def duplicate_conflict(core) -> tuple[bytes, str]:
    _, body = core.edoc(G22, [H41], document_number=7, rng=random.Random(3), subject="Bản đầu")
    core.handle(core.inbound(body, G22))
    _, other = core.edoc(G22, [H41], document_number=7, rng=random.Random(3), subject="Bản sau")
    return other, G22


def revoke_of(core, original_sender: str, revoker: str) -> tuple[bytes, str]:
    original, body = core.edoc(original_sender, [H41])
    core.handle(core.inbound(body, original_sender))
    business = Business(BusinessDocType.REVOKE, "Thu hồi", original.document_id)
    return core.edoc(revoker, [H41], business=business)[1], revoker


def revoke_unknown(core) -> tuple[bytes, str]:
    business = Business(BusinessDocType.REVOKE, "Thu hồi", f"{G22},2020/01/01,1/VPCP-TH")
    return core.edoc(G22, [H41], business=business)[1], G22


def status_from(core, sender: str, known: bool = True) -> tuple[bytes, str]:
    edoc, body = core.edoc(G22, [H41])
    if known:
        core.handle(core.inbound(body, G22))
    return core.status(sender, edoc), sender


REJECTIONS = {
    "SIGNATURE_INVALID": tampered,
    "CERT_NOT_REGISTERED": unregistered_key,
    "CERT_REVOKED": lambda core: (revoked_g01(core), sent_by(core, G01))[1],
    "SENDER_MISMATCH": lambda core: (core.edoc(G22, [H41], signed_by=G01)[1], G01),
    "SENDER_SUSPENDED": lambda core: (core.suspend(G01), sent_by(core, G01))[1],
    "UNKNOWN_RECIPIENT": lambda core: (core.edoc(G22, ["000.00.00.X99"])[1], G22),
    "RECIPIENT_SUSPENDED": lambda core: (core.suspend(H41), sent_by(core, G22))[1],
    "DUPLICATE_CONFLICT": duplicate_conflict,
    "UNKNOWN_DOCUMENT": revoke_unknown,
    "NOT_ORIGINAL_SENDER": lambda core: revoke_of(core, G22, G01),
    "NOT_A_RECIPIENT": lambda core: status_from(core, H29),
    "UNKNOWN_DOCUMENT/status": lambda core: status_from(core, H41, known=False),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_a_refused_message_gets_a_signed_rejection_with_its_code(core, case) -> None:
    code = case.split("/")[0]
    body, sender = REJECTIONS[case](core)
    kind = "status" if case.endswith("/status") or case == "NOT_A_RECIPIENT" else "edoc"
    documents_before = core.scalar("SELECT count(*) FROM documents")
    message = core.inbound(body, sender, type=kind)
    [item], outgoing = core.handle(message)

    assert isinstance(item.outcome, Rejection) and item.outcome.code == code
    rejection = core.rejection(item.receipt)
    assert (rejection.code, rejection.receipt_id, rejection.sender, rejection.message_id) == (
        code,
        item.receipt_id,
        sender,
        message.message_id,
    )
    assert (rejection.audit_seq, rejection.chain_hash) == (item.link.seq, item.link.hash)
    assert rejection.reason == item.outcome.reason
    assert [(o.routing_key, o.type, o.correlation_id) for o in outgoing] == [
        (sender, "rejection", message.message_id)
    ]
    [event] = [e for e in events(core) if e.receipt_id == item.receipt_id]
    assert (event.event, event.code, event.sender) == ("REJECTED", code, sender)
    assert core.scalar("SELECT count(*) FROM documents") == documents_before
    core.pipeline.confirm([item])
    assert stored_receipt(core, item.receipt_id) == item.receipt


def test_a_refused_message_that_comes_back_gets_its_first_rejection_again(core) -> None:
    # Refused, recorded, then its router stopped before the ack: the broker hands
    # the same message out again, marked redelivered.
    body, sender = REJECTIONS["UNKNOWN_RECIPIENT"](core)
    message = core.inbound(body, sender)
    [first], _ = core.handle(message)
    again = replace(message, tag=message.tag + 1, redelivered=True, received_at=datetime.now(UTC))
    [second], outgoing = core.handle(again)

    assert isinstance(second.outcome, Rejection) and second.outcome.code == "UNKNOWN_RECIPIENT"
    assert second.receipt_id == first.receipt_id and second.link == first.link
    assert [e.event for e in events(core, "REJECTED")] == ["REJECTED"]
    rejection = core.rejection(second.receipt)
    assert (rejection.receipt_id, rejection.audit_seq, rejection.chain_hash) == (
        first.receipt_id,
        first.link.seq,
        first.link.hash,
    )
    assert rejection.rejected_at == core.rejection(first.receipt).rejected_at
    assert [(o.routing_key, o.type) for o in outgoing] == [(sender, "rejection")]
    # The same bytes under a new message id are a new message: a new refusal. So
    # is a message sent again by the agency (not redelivered by the broker).
    [third], _ = core.handle(replace(message, message_id=str(uuid.uuid4()), redelivered=True))
    [fourth], _ = core.handle(replace(message, tag=message.tag + 2))
    assert len({first.receipt_id, third.receipt_id, fourth.receipt_id}) == 3
    assert len(events(core, "REJECTED")) == 3


@pytest.mark.parametrize(
    ("user_id", "reason"),
    [
        (None, "the message has no user_id property"),
        ("guest", "user_id 'guest' is not a registered agency"),
    ],
)
def test_an_unattributable_message_goes_to_quarantine_with_its_reason(
    core, user_id, reason
) -> None:
    _, body = core.edoc(G22, [H41])
    message = core.inbound(body, user_id)
    [item], outgoing = core.handle(message)

    assert isinstance(item.outcome, Unattributable) and item.receipt is None
    [quarantine] = outgoing
    assert (quarantine.exchange, quarantine.routing_key, quarantine.body, quarantine.type) == (
        "",
        "axis.quarantine",
        body,
        "edoc",
    )
    assert quarantine.headers == {
        RECEIPT_ID: item.receipt_id,
        REASON: reason,
        RECEIVED_AT: audit_time(message.received_at),
        CLAIMED_USER: user_id or "",
    }
    [event] = events(core)
    assert (event.event, event.sender, event.receipt_id) == (
        "QUARANTINED",
        user_id,
        item.receipt_id,
    )
    core.pipeline.confirm([item])
    assert core.scalar("SELECT count(*) FROM receipts") == 0


def test_a_body_over_max_bytes_is_too_large_and_not_archived(core) -> None:
    _, big = core.edoc(G22, [H41], size=80_000)
    _, small = core.edoc(G22, [H41])
    items, _ = core.handle(core.inbound(big, G22), core.inbound(small, G22))

    assert items[0].outcome.code == "TOO_LARGE"
    assert core.rejection(items[0].receipt).code == "TOO_LARGE"
    assert isinstance(items[1].outcome, AcceptEdoc)
    archived = {r.sha256 for r in core.rows("SELECT sha256 FROM archive_entries")}
    assert archived == {items[1].sha256}
    segments = b"".join(p.read_bytes() for p in core.archive.segments.iterdir())
    assert items[0].sha256.encode() not in segments and big not in segments


@pytest.mark.parametrize("message_id", [None, "", "có dấu", "two words", "x" * 256])
def test_a_missing_or_unusable_message_id_is_malformed(core, message_id) -> None:
    _, body = core.edoc(G22, [H41])
    [item], _ = core.handle(replace(core.inbound(body, G22), message_id=message_id))
    assert item.outcome.code == "MALFORMED"
    assert "message_id" in item.outcome.reason
    rejection = core.rejection(item.receipt)
    assert (rejection.code, rejection.message_id) == ("MALFORMED", None)


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"<edXML>not closed", "application/xml", "not well-formed XML"),
        (b"", "application/xml", "the body is empty"),
        (None, "application/json", "content_type must be application/xml"),
    ],
)
def test_a_body_that_is_not_xml_or_a_wrong_content_type_is_malformed(
    core, body, content_type, reason
) -> None:
    body = body if body is not None else core.edoc(G22, [H41])[1]
    [item], _ = core.handle(core.inbound(body, G22, content_type=content_type))
    assert item.outcome.code == "MALFORMED"
    assert reason in item.outcome.reason
    assert core.rejection(item.receipt).document_id is None


@pytest.mark.parametrize("declared", ["status", None, "receipt"])
def test_a_type_property_that_does_not_match_the_body_is_schema_invalid(core, declared) -> None:
    _, body = core.edoc(G22, [H41])
    [item], _ = core.handle(core.inbound(body, G22, type=declared))
    assert item.outcome.code == "SCHEMA_INVALID"
    assert item.outcome.reason == f"the message type is {declared!r} but its body is a edoc"


def test_an_unexpected_error_in_a_check_is_malformed_and_the_batch_goes_on(
    core, monkeypatch
) -> None:
    _, poisoned = core.edoc(G22, [H41], subject="Văn bản gây lỗi")
    _, fine = core.edoc(G22, [H29])
    validate = schemas.validate

    def flaky(root):
        if "Văn bản gây lỗi" in "".join(root.itertext()):
            raise RuntimeError("bug in a check")
        return validate(root)

    monkeypatch.setattr(schemas, "validate", flaky)
    items, outgoing = core.handle(core.inbound(poisoned, G22), core.inbound(fine, G22))

    assert items[0].outcome.code == "MALFORMED"
    assert items[0].outcome.reason == "the hub could not process this message (RuntimeError)"
    assert core.rejection(items[0].receipt).code == "MALFORMED"
    assert isinstance(items[1].outcome, AcceptEdoc)
    assert [(o.routing_key, o.type) for o in outgoing] == [
        (H29, "edoc"),
        (G22, "rejection"),
        (G22, "receipt"),
    ]


# signed chain heads


def test_sign_chain_head_signs_only_when_the_chain_moved_and_the_head_verifies(core) -> None:
    assert core.pipeline.sign_chain_head() is None  # an empty chain has nothing to sign
    _, body = core.edoc(G22, [H41])
    items, _ = core.handle(core.inbound(body, G22))
    assert core.pipeline.sign_chain_head() == 1
    assert core.pipeline.sign_chain_head() is None
    core.pipeline.confirm(items)  # one DELIVERED event
    assert core.pipeline.sign_chain_head() == 2
    assert [r.seq for r in core.rows("SELECT seq FROM chain_heads ORDER BY seq")] == [1, 2]
    with core.engine.connect() as conn:
        report = audit.verify(conn, check_head=head_checker(core.pipeline.verifier))
    assert report.ok and report.heads_checked == 2


def test_a_routers_first_batch_signs_the_chain_head_and_not_again_soon(core) -> None:
    _, body = core.edoc(G22, [H41])
    items, _ = core.handle(core.inbound(body, G22))
    [head] = core.rows("SELECT seq, hash FROM chain_heads")
    with core.engine.connect() as conn:
        assert (head.seq, head.hash) == audit.head(conn) == (1, audit.hash_at(conn, 1))
    core.pipeline.confirm(items)
    _, body = core.edoc(G22, [H41])
    core.pipeline.confirm(core.handle(core.inbound(body, G22))[0])
    assert core.scalar("SELECT count(*) FROM chain_heads") == 1  # not again before 10,000 events


def test_confirmations_recorded_in_the_next_batchs_transaction(core) -> None:
    _, first = core.edoc(G22, [H41])
    [earlier], _ = core.handle(core.inbound(first, G22))
    _, second = core.edoc(G22, [H29])
    [later], _ = core.handle(core.inbound(second, G22), confirmed=[earlier])
    kinds = [row.event for row in core.rows("SELECT event FROM audit_events ORDER BY seq")]
    assert kinds == ["RECEIVED", "DELIVERED", "RECEIVED"]
    assert core.scalar("SELECT count(*) FROM receipts") == 1
    # Chained in one append after the DELIVERED event: the receipt names the third link.
    with core.engine.connect() as conn:
        assert audit.verify(conn).ok
        assert later.link is not None and (later.link.seq, later.link.hash) == audit.head(conn)


def test_confirmations_ride_a_batch_with_no_events_of_its_own(core) -> None:
    _, body = core.edoc(G22, [H41])
    [original], _ = core.handle(core.inbound(body, G22))
    # The sender sends the same bytes again: a retry, which writes no event.
    [retry], _ = core.handle(core.inbound(body, G22), confirmed=[original])
    assert isinstance(retry.outcome, Retry)
    kinds = [row.event for row in core.rows("SELECT event FROM audit_events ORDER BY seq")]
    assert kinds == ["RECEIVED", "DELIVERED"]
    with core.engine.connect() as conn:
        assert audit.verify(conn).ok and audit.head(conn)[0] == 2


def test_a_registry_change_is_seen_by_the_next_batch(core) -> None:
    _, body = core.edoc(G22, [H41])
    core.suspend(H41)
    [item], _ = core.handle(core.inbound(body, G22))
    assert item.outcome.code == "RECIPIENT_SUSPENDED"
    with core.engine.begin() as conn:
        registry.set_state(conn, H41, registry.ACTIVE, datetime.now(UTC))
    _, body = core.edoc(G22, [H41])
    [item], _ = core.handle(core.inbound(body, G22))
    assert isinstance(item.outcome, AcceptEdoc)


def test_a_delivery_recorded_a_batch_later_keeps_the_time_the_broker_confirmed(core) -> None:
    _, body = core.edoc(G22, [H41])
    [item], _ = core.handle(core.inbound(body, G22))
    item.confirmed_at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    _, later = core.edoc(G22, [H29])
    core.handle(core.inbound(later, G22), confirmed=[item])
    with core.engine.connect() as conn:
        [delivered] = [link for link in audit.iter_links(conn) if link.kind == "DELIVERED"]
    assert delivered.at == item.confirmed_at


def test_a_retry_while_the_original_is_in_flight_gets_the_receipt_and_delivers_nothing(
    core,
) -> None:
    _, body = core.edoc(G22, [H41])
    [original], _ = core.handle(core.inbound(body, G22))
    [retry], outgoing = core.handle(core.inbound(body, G22))  # before the broker confirmed
    assert isinstance(retry.outcome, Retry) and retry.receipt_id == original.receipt_id
    assert retry.deliveries == ()
    assert [o.type for o in outgoing] == ["receipt"]
    core.pipeline.confirm([original])
    assert original.receipt_id not in core.pipeline.in_flight


def test_a_batch_that_failed_after_recording_is_delivered_when_routed_again(
    core, monkeypatch
) -> None:
    # The router routes a failed batch again message by message; what the failed
    # pass recorded is then a retry, and nothing of it was published yet.
    _, body = core.edoc(G22, [H41])
    message = core.inbound(body, G22)
    answer = core.pipeline.answer

    def fail_once(items, stored):
        monkeypatch.setattr(core.pipeline, "answer", answer)
        raise RuntimeError("a bug after the commit")

    monkeypatch.setattr(core.pipeline, "answer", fail_once)
    with pytest.raises(RuntimeError):
        core.handle(message)
    [again], outgoing = core.handle(message)
    assert isinstance(again.outcome, Retry) and again.deliveries == (H41,)
    assert sorted(o.type for o in outgoing) == ["edoc", "receipt"]
