"""Every answer of PROTOCOL section 4, each produced by a real message through the hub."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime, timedelta

import pika
import pytest

import schemas
from axis import registry
from axis.audit import store as audit
from signing import Signer
from signing.pki import make_ca, make_leaf


def rejection_code(hub, agency) -> str:
    answer = hub.answer(agency)
    assert isinstance(answer, schemas.AxisRejection), answer
    return answer.code


@pytest.fixture
def a_b(hub):
    return hub.register("A"), hub.register("B")


def test_malformed_body_is_rejected(hub, a_b) -> None:
    a, _ = a_b
    a.publish(b"<edXML><unclosed></edXML>")
    assert rejection_code(hub, a) == "MALFORMED"


def test_body_that_breaks_the_schema_is_rejected(hub, a_b) -> None:
    a, _ = a_b
    a.publish(b'<edXML xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"><Nothing/></edXML>')
    assert rejection_code(hub, a) == "SCHEMA_INVALID"


def test_body_over_the_size_limit_is_rejected(hub, a_b) -> None:
    a, b = a_b
    a.publish(a.sign(a.edoc([b.code], size=3 * 1024 * 1024)))
    assert rejection_code(hub, a) == "TOO_LARGE"


def test_content_changed_after_signing_is_rejected(hub, a_b) -> None:
    a, b = a_b
    body = a.sign(a.edoc([b.code], subject="Về việc A"))
    a.publish(body.replace("Về việc A".encode(), "Về việc B".encode()))
    assert rejection_code(hub, a) == "SIGNATURE_INVALID"


def test_certificate_from_another_ca_is_untrusted(hub, a_b) -> None:
    a, b = a_b
    stranger = make_leaf(a.code, make_ca("Elsewhere CA"))
    body = Signer(stranger.key, stranger.certificate).sign(schemas.to_element(a.edoc([b.code])))
    a.publish(body)
    assert rejection_code(hub, a) == "CERT_UNTRUSTED"


def test_expired_certificate_is_rejected(hub, a_b) -> None:
    a, b = a_b
    now = datetime.now(UTC)
    old = make_leaf(
        a.code, hub.ca, not_before=now - timedelta(days=400), not_after=now - timedelta(days=1)
    )
    a.publish(_sign_anyway(old, a.edoc([b.code])))
    assert rejection_code(hub, a) == "CERT_EXPIRED"


def _sign_anyway(leaf, edoc) -> bytes:
    """Sign with a certificate the Signer would refuse today (it checks fitness, not time)."""
    return Signer(leaf.key, leaf.certificate).sign(schemas.to_element(edoc))


def test_certificate_revoked_in_the_registry_is_rejected(hub, a_b) -> None:
    a, b = a_b
    with hub.engine.begin() as conn:
        registry.revoke_certificate(
            conn, registry.fingerprint(a.signer.certificate), datetime.now(UTC)
        )
    a.publish(a.sign(a.edoc([b.code])))
    assert rejection_code(hub, a) == "CERT_REVOKED"


def test_trusted_but_unregistered_certificate_is_rejected(hub, a_b) -> None:
    a, b = a_b
    other = make_leaf(a.code, hub.ca)
    a.publish(Signer(other.key, other.certificate).sign(schemas.to_element(a.edoc([b.code]))))
    assert rejection_code(hub, a) == "CERT_NOT_REGISTERED"


def test_from_that_is_not_the_amqp_user_is_a_sender_mismatch(hub, a_b) -> None:
    a, b = a_b
    forged = b.edoc([a.code])  # From/OrganId = B, signed with A's key, published by A
    a.publish(a.sign(forged))
    assert rejection_code(hub, a) == "SENDER_MISMATCH"


def test_suspended_sender_is_rejected(hub, a_b) -> None:
    a, b = a_b
    hub.suspend(a.code)
    a.publish(a.sign(a.edoc([b.code])))
    assert rejection_code(hub, a) == "SENDER_SUSPENDED"


def test_unknown_recipient_is_rejected(hub, a_b) -> None:
    a, _ = a_b
    a.publish(a.sign(a.edoc(["000.00.00.Z99"])))
    assert rejection_code(hub, a) == "UNKNOWN_RECIPIENT"


def test_suspended_recipient_is_rejected(hub, a_b) -> None:
    a, b = a_b
    hub.suspend(b.code)
    a.publish(a.sign(a.edoc([b.code])))
    assert rejection_code(hub, a) == "RECIPIENT_SUSPENDED"


def test_same_document_id_with_different_bytes_is_a_conflict(hub, a_b) -> None:
    a, b = a_b
    first = a.edoc([b.code], number=7)
    a.publish(a.sign(first))
    assert isinstance(hub.answer(a), schemas.AxisReceipt)
    a.publish(a.sign(dataclasses.replace(first, subject="Một nội dung khác")))
    assert rejection_code(hub, a) == "DUPLICATE_CONFLICT"


def test_same_bytes_again_is_a_retry_that_gets_the_original_receipt_and_delivers_nothing(
    hub, a_b
) -> None:
    a, b = a_b
    body = a.sign(a.edoc([b.code]))
    a.publish(body)
    first = hub.answer(a)
    assert len(b.take()) == 1
    a.publish(body)
    second = hub.answer(a)
    assert isinstance(second, schemas.AxisReceipt)
    assert (second.receipt_id, second.audit_seq, second.chain_hash) == (
        first.receipt_id,
        first.audit_seq,
        first.chain_hash,
    )
    assert b.take(timeout=1.0) == []


def test_revoke_by_the_original_sender_is_delivered_and_recorded(hub, a_b) -> None:
    a, b = a_b
    original = a.edoc([b.code])
    a.publish(a.sign(original))
    assert isinstance(hub.answer(a), schemas.AxisReceipt)
    revoke = a.edoc(
        [b.code],
        business=schemas.Business(
            schemas.BusinessDocType.REVOKE, "Ban hành nhầm", original.document_id
        ),
    )
    a.publish(a.sign(revoke))
    assert isinstance(hub.answer(a), schemas.AxisReceipt)
    assert len(b.take(2)) == 2
    with hub.engine.connect() as conn:
        assert "REVOKED" in [link.kind for link in audit.trail(conn, original.document_id)]


def test_revoke_of_another_agencys_document_is_refused(hub, a_b) -> None:
    a, b = a_b
    original = a.edoc([b.code])
    a.publish(a.sign(original))
    assert isinstance(hub.answer(a), schemas.AxisReceipt)
    assert len(b.take()) == 1
    revoke = b.edoc(
        [a.code],
        business=schemas.Business(schemas.BusinessDocType.REVOKE, None, original.document_id),
    )
    b.publish(b.sign(revoke))
    assert rejection_code(hub, b) == "NOT_ORIGINAL_SENDER"


def test_revoke_of_a_document_never_sent_is_unknown(hub, a_b) -> None:
    a, b = a_b
    ghost = a.edoc([b.code], number=999999).document_id
    revoke = a.edoc(
        [b.code], business=schemas.Business(schemas.BusinessDocType.REVOKE, None, ghost)
    )
    a.publish(a.sign(revoke))
    assert rejection_code(hub, a) == "UNKNOWN_DOCUMENT"


def _status(by, document: schemas.Edoc, code: str = "01") -> schemas.Status:
    return schemas.Status.about(
        by.code,
        document.document_id,
        code,
        datetime.now(UTC),
        addressee=document.sender.organ_id,
    )


def test_status_from_a_recipient_is_forwarded_to_the_sender(hub, a_b) -> None:
    a, b = a_b
    document = a.edoc([b.code])
    a.publish(a.sign(document))
    assert isinstance(hub.answer(a), schemas.AxisReceipt)
    b.take()
    status_body = b.sign(_status(b, document, "03"))
    b.publish(status_body, type="status")
    assert isinstance(hub.answer(b), schemas.AxisReceipt)
    [forwarded] = a.take()
    assert (forwarded.type, forwarded.body, forwarded.headers["x-axis-sender"]) == (
        "status",
        status_body,
        b.code,
    )


def test_status_from_a_non_recipient_is_refused(hub, a_b) -> None:
    a, b = a_b
    c = hub.register("C")
    document = a.edoc([b.code])
    a.publish(a.sign(document))
    assert isinstance(hub.answer(a), schemas.AxisReceipt)
    c.publish(c.sign(_status(c, document)), type="status")
    assert rejection_code(hub, c) == "NOT_A_RECIPIENT"


def test_status_for_an_unknown_document_is_refused(hub, a_b) -> None:
    a, b = a_b
    never_sent = a.edoc([b.code])
    b.publish(b.sign(_status(b, never_sent)), type="status")
    assert rejection_code(hub, b) == "UNKNOWN_DOCUMENT"


def test_message_without_user_id_is_quarantined_and_audited(hub, a_b) -> None:
    a, b = a_b
    a.publish(a.sign(a.edoc([b.code])), user_id=None)
    channel = a.channel()
    with pytest.raises(
        pika.exceptions.ChannelClosedByBroker
    ):  # agencies cannot read the quarantine
        channel.basic_get("axis.quarantine")
    with pika.BlockingConnection(pika.URLParameters(hub.broker.amqp_url)) as admin:
        deadline = time.monotonic() + 10
        method = None
        while method is None and time.monotonic() < deadline:
            method, props, _ = admin.channel().basic_get("axis.quarantine", auto_ack=True)
            time.sleep(0.05)
        assert method is not None
        assert "user_id" in props.headers["x-axis-reason"]
    with hub.engine.connect() as conn:
        assert "QUARANTINED" in {link.kind for link in audit.iter_links(conn)}


def test_broadcast_to_provinces_reaches_all_63_inboxes(hub) -> None:
    group = f"provinces-{len(hub.agencies)}"  # the hub is shared: a group of this test's own
    office = hub.register("G")
    provinces = [hub.register("H", kind="province", groups=(group,)) for n in range(1, 64)]
    directive = office.edoc([f"@{group}"])
    office.publish(office.sign(directive))
    receipt = hub.answer(office)
    assert isinstance(receipt, schemas.AxisReceipt)
    assert len(receipt.recipients) == 63
    for province in provinces:
        [message] = province.take()
        assert message.headers["x-axis-sender"] == office.code


def test_audit_verify_detects_a_row_changed_in_the_database(fresh_hub) -> None:
    hub = fresh_hub
    a, b = hub.register("A"), hub.register("B")
    a.publish(a.sign(a.edoc([b.code])))
    hub.answer(a)
    hub.wait_until(lambda: _count_delivered(hub) == 1)
    with hub.engine.begin() as conn:
        assert audit.verify(conn).ok
        conn.exec_driver_sql("UPDATE audit_events SET sender = 'X' WHERE seq = 1")
    with hub.engine.connect() as conn:
        report = audit.verify(conn)
    assert not report.ok and report.problem.seq == 1


def _count_delivered(hub) -> int:
    with hub.engine.connect() as conn:
        return sum(1 for link in audit.iter_links(conn) if link.kind == "DELIVERED")
