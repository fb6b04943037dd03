"""axis.record: what the hub knew before a batch, what it decided, and what the broker confirmed."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

import schemas
from axis import record
from axis.archive import Entry
from axis.audit import store as audit_store
from axis.authorize import AcceptEdoc, AcceptStatus, KnownDocument, KnownStatus, Retry
from axis.models import Delivery, Receipt
from schemas.samples import sample_status
from tests.core.conftest import stored_first_statuses

G22, G01, H41, H29 = "000.00.00.G22", "000.00.00.G01", "000.00.00.H41", "000.00.00.H29"
CONFIRMED_AT = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def accepted(core, recipients=(H41, H29)):
    """An edoc from G22, handled; returns (edoc, item)."""
    edoc, body = core.edoc(G22, list(recipients))
    [item], _ = core.handle(core.inbound(body, G22))
    return edoc, item


def test_lookup_finds_documents_and_statuses_with_their_pending_deliveries(core) -> None:
    edoc, item = accepted(core)
    status_body = core.status(H41, edoc)
    [status], _ = core.handle(core.inbound(status_body, H41, type="status"))
    unknown = "000.00.00.G22,2020/01/01,1/VPCP-TH"

    with core.engine.connect() as conn:
        known = record.lookup(conn, {edoc.document_id, unknown}, {(H41, status.sha256)})
    [document] = known.documents[edoc.document_id]
    assert known.documents == {
        edoc.document_id: [
            KnownDocument(
                edoc.document_id,
                G22,
                item.sha256,
                item.receipt_id,
                document.recipients,
                document.undelivered,
                item.inbound.received_at,
                0,
            )
        ]
    }
    assert sorted(document.recipients) == [H29, H41]
    assert sorted(document.undelivered) == [H29, H41]
    assert known.statuses == {
        (H41, status.sha256): KnownStatus(
            status.receipt_id, edoc.document_id, H41, G22, (G22,), status.inbound.received_at
        )
    }

    with core.engine.begin() as conn:
        assert record.confirm(conn, [item, status], CONFIRMED_AT) == 3
    with core.engine.connect() as conn:
        known = record.lookup(conn, {edoc.document_id}, {(H41, status.sha256)})
    assert known.documents[edoc.document_id][0].undelivered == ()
    assert known.statuses[(H41, status.sha256)].undelivered == ()


def test_lookup_of_nothing_or_of_many_ids_reads_in_chunks(core) -> None:
    edoc, _ = accepted(core)
    with core.engine.connect() as conn:
        assert record.lookup(conn, set(), set()).documents == {}
        many = {f"000.00.00.G22,2026/11/20,{n}/VPCP-TH" for n in range(1, 1200)}
        known = record.lookup(conn, many | {edoc.document_id}, {(H41, "ab" * 32)})
    assert list(known.documents) == [edoc.document_id]
    assert known.statuses == {}


def test_confirm_counts_only_pending_published_deliveries(core) -> None:
    _, item = accepted(core)
    item.deliveries = (H41,)  # the broker confirmed only H41's copy so far
    with core.engine.begin() as conn:
        assert record.confirm(conn, [item], CONFIRMED_AT) == 1
    item.deliveries = (H41, H29)
    with core.engine.begin() as conn:
        assert record.confirm(conn, [item], CONFIRMED_AT) == 1
        assert record.confirm(conn, [item], CONFIRMED_AT) == 0
        delivered = conn.execute(
            sa.select(Delivery.recipient, Delivery.delivered_at).order_by(Delivery.recipient)
        ).all()
    assert [tuple(r) for r in delivered] == [(H29, CONFIRMED_AT), (H41, CONFIRMED_AT)]
    assert core.scalar("SELECT count(*) FROM audit_events WHERE event = 'DELIVERED'") == 2


def test_two_routers_confirming_the_same_delivery_at_once_record_one_delivered_event(
    core,
) -> None:
    # Two routers each delivered a copy (a retry reached the other router while the
    # original was in flight) and confirm at the same moment: one DELIVERED event.
    _, item = accepted(core, recipients=(H41,))
    first = core.engine.connect()
    first.begin()
    assert record.confirm(first, [item], CONFIRMED_AT) == 1
    counted: list[int] = []

    def second() -> None:
        with core.engine.begin() as conn:
            counted.append(record.confirm(conn, [item], CONFIRMED_AT))

    other = threading.Thread(target=second)
    other.start()
    time.sleep(0.5)  # the second is now waiting for the first's transaction
    first.commit()
    first.close()
    other.join(timeout=30)
    assert counted == [0]
    assert core.scalar("SELECT count(*) FROM audit_events WHERE event = 'DELIVERED'") == 1


def test_confirm_stores_receipts_and_rejections_once_by_kind(core) -> None:
    _, item = accepted(core)
    [rejected], _ = core.handle(core.inbound(b"<oops/>", G22))
    with core.engine.begin() as conn:
        record.confirm(conn, [item, rejected], CONFIRMED_AT)
        record.confirm(conn, [item, rejected], CONFIRMED_AT)
        stored = conn.execute(sa.select(Receipt.receipt_id, Receipt.kind)).all()
        bodies = record.stored_receipts(conn, [item.receipt_id, rejected.receipt_id, "nope"])
    assert sorted(tuple(r) for r in stored) == sorted(
        [(item.receipt_id, "receipt"), (rejected.receipt_id, "rejection")]
    )
    assert bodies == {item.receipt_id: item.receipt, rejected.receipt_id: rejected.receipt}


def test_rebuild_receipt_reissues_the_original_facts_when_the_stored_one_is_missing(core) -> None:
    core.suspend(H29)
    edoc, item = accepted(core, recipients=(H41, "@provinces"))
    core.pipeline.confirm([item])
    with core.engine.begin() as conn:
        conn.execute(sa.delete(Receipt))
    with core.engine.connect() as conn:
        rebuilt = record.rebuild_receipt(conn, item.receipt_id, core.pipeline.writer)
        assert record.rebuild_receipt(conn, "no-such-receipt", core.pipeline.writer) is None
    original = core.receipt(item.receipt)
    assert core.receipt(rebuilt) == original
    assert (original.audit_seq, original.chain_hash) == (item.link.seq, item.link.hash)
    assert [(r.organ_id, r.outcome) for r in original.recipients] == [
        (H41, "delivered"),
        ("000.00.00.H58", "delivered"),
        (H29, "suspended"),
    ]

    [retry], outgoing = core.handle(core.inbound(item.inbound.body, G22))
    assert retry.outcome == Retry(item.receipt_id, edoc.document_id, (), item.inbound.received_at)
    assert core.receipt(retry.receipt) == original
    assert [o.type for o in outgoing] == ["receipt"]


def test_rebuild_receipt_of_a_status(core) -> None:
    edoc, _ = accepted(core)
    [status], _ = core.handle(core.inbound(core.status(H29, edoc), H29, type="status"))
    with core.engine.connect() as conn:
        rebuilt = record.rebuild_receipt(conn, status.receipt_id, core.pipeline.writer)
    receipt = core.receipt(rebuilt)
    assert receipt == core.receipt(status.receipt)
    assert (receipt.kind, receipt.sender, receipt.recipients) == (
        "status",
        H29,
        (schemas.RecipientOutcome(G22),),
    )


def test_write_indexes_the_archived_bodies_once_and_archive_entry_finds_them(core) -> None:
    _, item = accepted(core)
    entry = record_entry(core, item.sha256)
    assert core.archive.read(entry) == item.inbound.body
    with core.engine.begin() as conn:
        record.write(conn, [], [entry, entry])  # the same body archived again: no error
    assert record_entry(core, item.sha256) == entry
    assert record_entry(core, "00" * 32) is None


def record_entry(core, sha256: str) -> Entry | None:
    with core.engine.connect() as conn:
        return record.archive_entry(conn, sha256)


def test_write_numbers_a_batchs_events_in_order_with_business_events_after_theirs(core) -> None:
    edoc, body = core.edoc(G22, [H41])
    update = schemas.Business(schemas.BusinessDocType.UPDATE, "Bổ sung", edoc.document_id)
    _, update_body = core.edoc(G22, [H41], business=update)
    _, other = core.edoc(G22, [H29])
    items, _ = core.handle(
        core.inbound(body, G22), core.inbound(update_body, G22), core.inbound(other, G22)
    )
    rows = core.rows("SELECT seq, event, document_id FROM audit_events ORDER BY seq")
    assert [(r.seq, r.event, r.document_id) for r in rows] == [
        (1, "RECEIVED", edoc.document_id),
        (2, "RECEIVED", items[1].document_id),
        (3, "UPDATED", edoc.document_id),
        (4, "RECEIVED", items[2].document_id),
    ]
    assert [i.link.seq for i in items] == [1, 2, 4]
    audit_seqs = core.rows("SELECT document_id, audit_seq, state FROM documents")
    assert {(r.document_id, r.audit_seq, r.state) for r in audit_seqs} == {
        (edoc.document_id, 1, "updated"),
        (items[1].document_id, 2, "active"),
        (items[2].document_id, 4, "active"),
    }


def signed_status(core, sender: str, edoc, code: str, at: datetime) -> bytes:
    """A status from ``sender`` with its own Timestamp, so two of one code differ."""
    status = sample_status(sender, edoc, schemas.StatusCode(code), now=at)
    return core.signer(sender).sign(schemas.to_element(status))


def first_statuses_by_the_trail(core) -> dict[tuple[str, str], tuple[datetime, datetime]]:
    """Each document delivery's earliest STATUS 01 and 06 from its recipient, per the events."""
    rows = core.rows(
        "SELECT d.receipt_id, dl.recipient,"
        " min(CASE WHEN e.code = '01' THEN e.at END) AS ack,"
        " min(CASE WHEN e.code = '06' THEN e.at END) AS done"
        " FROM deliveries dl JOIN documents d ON d.receipt_id = dl.receipt_id"
        " LEFT JOIN audit_events e ON e.event = 'STATUS' AND e.document_id = d.document_id"
        " AND e.sender = dl.recipient AND e.recipient = d.sender"
        " GROUP BY d.receipt_id, dl.recipient"
    )
    return {(r.receipt_id, r.recipient): (as_utc(r.ack), as_utc(r.done)) for r in rows}


def as_utc(value: object) -> datetime | None:
    """A time the raw SQL above read (text on SQLite) as an aware UTC datetime."""
    if value is None:
        return None
    at = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return at.replace(tzinfo=UTC)


def test_write_keeps_each_recipients_first_01_and_06_on_its_delivery(core) -> None:
    start = datetime.now(UTC)
    edoc, body = core.edoc(G22, [H41, H29])
    # A recipient's 01 can come in the document's own batch (a fast agency, a redo).
    [document, early], _ = core.handle(
        core.inbound(body, G22),
        core.inbound(signed_status(core, H29, edoc, "01", start), H29, type="status"),
    )
    first_ack = core.inbound(signed_status(core, H41, edoc, "01", start), H41, type="status")
    second_ack = core.inbound(
        signed_status(core, H41, edoc, "01", start + timedelta(seconds=1)), H41, type="status"
    )
    core.handle(first_ack)
    core.handle(
        second_ack,
        core.inbound(signed_status(core, H41, edoc, "03", start), H41, type="status"),
        core.inbound(signed_status(core, H41, edoc, "06", start), H41, type="status"),
    )
    assert early.outcome.status.code == "01"
    stored = stored_first_statuses(core.engine)
    assert stored == first_statuses_by_the_trail(core)
    assert stored[(document.receipt_id, H41)] == (
        first_ack.received_at,  # the second 01 left the first in place
        stored[(document.receipt_id, H41)][1],
    )
    assert stored[(document.receipt_id, H41)][1] is not None
    assert stored[(document.receipt_id, H29)] == (early.inbound.received_at, None)
    # Statuses' own deliveries (to the sender) hold neither.
    assert (
        core.scalar(
            "SELECT count(*) FROM deliveries WHERE acknowledged_at IS NOT NULL "
            "OR completed_at IS NOT NULL"
        )
        == 2
    )


def test_a_status_recorded_late_with_an_earlier_receipt_time_becomes_the_first(core) -> None:
    # Two routers: the one that took the earlier 01 commits after the other.
    edoc, item = accepted(core, recipients=(H41,))
    now = datetime.now(UTC)
    later = core.inbound(signed_status(core, H41, edoc, "01", now), H41, type="status")
    earlier = replace(
        core.inbound(
            signed_status(core, H41, edoc, "01", now - timedelta(seconds=5)), H41, type="status"
        ),
        received_at=later.received_at - timedelta(seconds=5),
    )
    core.handle(later)
    core.handle(earlier)
    assert stored_first_statuses(core.engine) == {
        (item.receipt_id, H41): (earlier.received_at, None)
    }
    assert stored_first_statuses(core.engine) == first_statuses_by_the_trail(core)


def test_a_status_and_the_confirm_of_its_documents_delivery_at_once_do_not_deadlock(
    core,
) -> None:
    # Router B records H41's 01 (which updates the document's delivery to H41) while
    # router A records the broker's confirm of that very delivery. Were A to lock the
    # delivery before the chain's head, B holding the head would wait for A's row
    # and A for B's head.
    edoc, item = accepted(core, recipients=(H41,))
    status = core.inbound(core.status(H41, edoc), H41, type="status")
    errors: list[BaseException] = []

    def run(work) -> threading.Thread:
        def guarded() -> None:
            try:
                work()
            except BaseException as exc:  # reported by the assertion below
                errors.append(exc)

        thread = threading.Thread(target=guarded)
        thread.start()
        return thread

    def confirm() -> None:
        with core.engine.begin() as conn:
            record.confirm(conn, [item], CONFIRMED_AT)

    holder = core.engine.connect()
    holder.begin()
    audit_store.lock_head(holder)  # both routers now queue for the head: B first
    router_b = run(lambda: core.handle(status))
    time.sleep(0.5)
    router_a = run(confirm)
    time.sleep(0.5)
    holder.commit()
    holder.close()
    router_b.join(timeout=30)
    router_a.join(timeout=30)
    assert errors == []
    assert core.scalar("SELECT count(*) FROM audit_events WHERE event = 'DELIVERED'") == 1
    [(acknowledged, _)] = stored_first_statuses(core.engine).values()
    assert acknowledged == status.received_at


def signed(core, edoc: schemas.Edoc) -> bytes:
    """``edoc`` signed by its sender."""
    return core.signer(edoc.sender.organ_id).sign(schemas.to_element(edoc))


def test_lookup_knows_the_same_document_id_from_two_senders_as_two_documents(core) -> None:
    ours, body = core.edoc(G22, [H41])
    theirs, _ = core.edoc(G01, [H41])
    theirs = replace(theirs, document_id=ours.document_id)  # G01 happens to use G22's id
    [first], _ = core.handle(core.inbound(body, G22))
    [second], _ = core.handle(core.inbound(signed(core, theirs), G01))
    assert isinstance(second.outcome, AcceptEdoc) and second.outcome.targets == ()

    with core.engine.connect() as conn:
        known = record.lookup(conn, {ours.document_id}, set())
    assert [(d.sender, d.receipt_id) for d in known.documents[ours.document_id]] == [
        (G22, first.receipt_id),
        (G01, second.receipt_id),
    ]
    assert known.document(G01, ours.document_id).receipt_id == second.receipt_id  # type: ignore[union-attr]
    rows = core.rows(
        "SELECT sender, state FROM documents WHERE document_id = :id", id=ours.document_id
    )
    assert sorted(tuple(r) for r in rows) == [(G01, "active"), (G22, "active")]


def test_a_status_lands_on_the_delivery_of_the_document_of_the_sender_it_is_addressed_to(
    core,
) -> None:
    ours, body = core.edoc(G22, [H41])
    theirs, _ = core.edoc(G01, [H41])
    theirs = replace(theirs, document_id=ours.document_id)
    [g22, g01], _ = core.handle(core.inbound(body, G22), core.inbound(signed(core, theirs), G01))
    now = datetime.now(UTC)
    [status], outgoing = core.handle(
        core.inbound(signed_status(core, H41, theirs, "01", now), H41, type="status")
    )
    assert status.outcome.document.receipt_id == g01.receipt_id
    assert [(o.routing_key, o.type) for o in outgoing] == [(G01, "status"), (H41, "receipt")]
    stored = stored_first_statuses(core.engine)
    assert stored == {
        (g22.receipt_id, H41): (None, None),
        (g01.receipt_id, H41): (status.inbound.received_at, None),
    }
    assert stored == first_statuses_by_the_trail(core)
    [row] = core.rows("SELECT document_id, document_sender, sender, code FROM statuses")
    assert tuple(row) == (ours.document_id, G01, H41, "01")


def test_write_records_whose_document_a_status_and_a_recall_request_are_about(core) -> None:
    edoc, item = accepted(core)
    [arrived], _ = core.handle(core.inbound(core.status(H41, edoc), H41, type="status"))
    [recall], outgoing = core.handle(
        core.inbound(
            core.status(G22, edoc, schemas.StatusCode.RECALL_REQUESTED), G22, type="status"
        )
    )
    assert recall.outcome.document.receipt_id == item.receipt_id
    assert [(o.routing_key, o.type) for o in outgoing] == [(H41, "status"), (G22, "receipt")]
    rows = core.rows(
        "SELECT s.receipt_id, s.sender, s.code, s.document_sender, dl.recipient"
        " FROM statuses s JOIN deliveries dl ON dl.receipt_id = s.receipt_id"
    )
    assert sorted(tuple(r) for r in rows) == sorted(
        [
            (arrived.receipt_id, H41, "01", G22, G22),
            (recall.receipt_id, G22, "13", G22, H41),
        ]
    )
    # A 13 is no recipient's status: it leaves the document's deliveries alone.
    assert stored_first_statuses(core.engine) == {
        (item.receipt_id, H41): (arrived.inbound.received_at, None),
        (item.receipt_id, H29): (None, None),
    }


def test_keep_first_statuses_marks_the_delivery_of_the_document_receipt_each_row_names(
    core,
) -> None:
    _, item = accepted(core)
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    rows = [
        {"document_receipt_id": item.receipt_id, "sender": H41, "code": "01", "received_at": at},
        {"document_receipt_id": item.receipt_id, "sender": H29, "code": "03", "received_at": at},
        {"document_receipt_id": None, "sender": H29, "code": "06", "received_at": at},
    ]
    with core.engine.begin() as conn:
        record.keep_first_statuses(conn, rows)
    assert stored_first_statuses(core.engine) == {
        (item.receipt_id, H41): (at, None),
        (item.receipt_id, H29): (None, None),
    }


def test_write_records_an_sdk_revoke_repeating_its_originals_id_on_the_original(core) -> None:
    edoc, item = accepted(core, recipients=(H41,))
    # The national SDK's revoke repeats the original's header, DocumentId included.
    revoke = replace(edoc, business=schemas.Business(schemas.BusinessDocType.REVOKE, "Thu hồi"))
    revoke_body = signed(core, revoke)
    [revoked], outgoing = core.handle(core.inbound(revoke_body, G22))
    assert isinstance(revoked.outcome, AcceptEdoc)
    assert [t.receipt_id for t in revoked.outcome.targets] == [item.receipt_id]
    assert [(o.routing_key, o.type) for o in outgoing] == [(H41, "edoc"), (G22, "receipt")]
    events = core.rows("SELECT event, document_id, receipt_id FROM audit_events ORDER BY seq")
    assert [tuple(e) for e in events if e.event != "DELIVERED"] == [
        ("RECEIVED", edoc.document_id, item.receipt_id),
        ("RECEIVED", edoc.document_id, revoked.receipt_id),
        ("REVOKED", edoc.document_id, revoked.receipt_id),
    ]
    documents = core.rows("SELECT receipt_id, business_type, acts_on, state FROM documents")
    assert sorted(tuple(d) for d in documents) == sorted(
        [
            (item.receipt_id, 0, None, "revoked"),
            (revoked.receipt_id, 1, edoc.document_id, "active"),
        ]
    )

    # The same revoke again is a retry of the revoke; another one is a conflict.
    again = replace(revoke, business=schemas.Business(schemas.BusinessDocType.REVOKE, "Nhầm"))
    [retry, conflict], _ = core.handle(
        core.inbound(revoke_body, G22), core.inbound(signed(core, again), G22)
    )
    assert isinstance(retry.outcome, Retry) and retry.receipt_id == revoked.receipt_id
    assert conflict.outcome.code == "DUPLICATE_CONFLICT"


def test_write_records_replaced_on_each_document_a_replacement_names(core) -> None:
    first, first_body = core.edoc(G22, [H41])
    second, second_body = core.edoc(G22, [H29])
    business = schemas.Business(
        schemas.BusinessDocType.REPLACE,
        "Thay thế",
        replacements=(
            schemas.Replacement(first.document_id, (H41,)),
            schemas.Replacement(second.document_id, (H29,)),
        ),
    )
    _, replace_body = core.edoc(G22, [H41, H29], business=business)
    items, _ = core.handle(
        core.inbound(first_body, G22),
        core.inbound(second_body, G22),
        core.inbound(replace_body, G22),
    )
    replacement = items[2]
    assert isinstance(replacement.outcome, AcceptEdoc)
    assert replacement.outcome.business_event == "REPLACED"
    assert [t.receipt_id for t in replacement.outcome.targets] == [
        items[0].receipt_id,
        items[1].receipt_id,
    ]
    events = core.rows(
        "SELECT document_id, receipt_id, detail FROM audit_events"
        " WHERE event = 'REPLACED' ORDER BY seq"
    )
    assert [(e.document_id, e.receipt_id, json.loads(e.detail)) for e in events] == [
        (
            first.document_id,
            replacement.receipt_id,
            {"by": replacement.document_id, "reason": "Thay thế", "for": [H41]},
        ),
        (
            second.document_id,
            replacement.receipt_id,
            {"by": replacement.document_id, "reason": "Thay thế", "for": [H29]},
        ),
    ]
    states = core.rows("SELECT receipt_id, state, acts_on FROM documents")
    assert {tuple(s) for s in states} == {
        (items[0].receipt_id, "replaced", None),
        (items[1].receipt_id, "replaced", None),
        (replacement.receipt_id, "active", first.document_id),
    }


def test_write_delivers_an_update_to_its_recipients_and_its_new_receivers(core) -> None:
    edoc, item = accepted(core, recipients=(H41,))
    business = schemas.Business(
        schemas.BusinessDocType.UPDATE,
        "Bổ sung nơi nhận",
        edoc.document_id,
        update=schemas.UpdateInfo(
            document_receiver=True,
            receivers=(schemas.Receiver(H29), schemas.Receiver(H41)),
        ),
    )
    _, body = core.edoc(G22, [H41], business=business)
    [update], outgoing = core.handle(core.inbound(body, G22))
    assert isinstance(update.outcome, AcceptEdoc)
    assert update.outcome.recipients == (H41, H29)
    assert [(o.routing_key, o.type) for o in outgoing] == [
        (H41, "edoc"),
        (H29, "edoc"),
        (G22, "receipt"),
    ]
    deliveries = core.rows(
        "SELECT recipient FROM deliveries WHERE receipt_id = :rid", rid=update.receipt_id
    )
    assert sorted(r.recipient for r in deliveries) == [H29, H41]
    [event] = core.rows("SELECT document_id, detail FROM audit_events WHERE event = 'UPDATED'")
    assert event.document_id == edoc.document_id
    assert json.loads(event.detail)["receivers"] == [H29, H41]
    assert (
        core.scalar("SELECT state FROM documents WHERE receipt_id = :rid", rid=item.receipt_id)
        == "updated"
    )


def test_a_document_addressed_to_its_own_sender_is_recorded_and_delivered_to_it(core) -> None:
    edoc, item = accepted(core, recipients=(G22,))
    assert isinstance(item.outcome, AcceptEdoc) and item.outcome.recipients == (G22,)
    assert item.deliveries == (G22,)
    deliveries = core.rows("SELECT receipt_id, recipient FROM deliveries")
    assert [tuple(d) for d in deliveries] == [(item.receipt_id, G22)]
    # Its sender, as its recipient, may report on it too.
    [status], outgoing = core.handle(core.inbound(core.status(G22, edoc), G22, type="status"))
    assert isinstance(status.outcome, AcceptStatus)
    assert [(o.routing_key, o.type) for o in outgoing] == [(G22, "status"), (G22, "receipt")]
    assert stored_first_statuses(core.engine) == {
        (item.receipt_id, G22): (status.inbound.received_at, None)
    }
