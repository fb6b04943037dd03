"""The SDK against a real hub: receipts, rejections, end-to-end checks, repeats, reconnects."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import pika
import pika.adapters.blocking_connection
import pika.exceptions
import pytest
from adapters_support import agency_files, client_for, publish_to_inbox

import schemas
from adapters import AgencyClient, Delivery, DeliveryInvalid, Rejected
from axis.audit.chain import format_time
from axis.rejections import SenderMismatch, SignatureInvalid, UnknownRecipient


def take(client: AgencyClient, count: int, timeout: float = 15.0) -> list[Delivery]:
    """Up to ``count`` deliveries, acknowledging each (the loop comes back for the next)."""
    found: list[Delivery] = []
    if count <= 0:
        return found
    deadline = time.monotonic() + timeout
    for delivery in client.receive(timeout=timeout):
        found.append(delivery)
        delivery.ack()
        if len(found) >= count or time.monotonic() > deadline:
            break
    return found


def hub_headers(sender: str) -> dict[str, str]:
    """Delivery headers as the hub writes them, with a fresh receipt id."""
    return {
        "x-axis-receipt-id": str(uuid.uuid4()),
        "x-axis-received-at": format_time(datetime.now(UTC)),
        "x-axis-sender": sender,
    }


def test_round_trip_gives_a_verified_receipt_a_verified_delivery_and_status_01_back(
    axis_hub,
) -> None:
    a, b = axis_hub.register("SDKA"), axis_hub.register("SDKB")
    edoc = a.edoc([b.code])
    with client_for(axis_hub, a) as ca, client_for(axis_hub, b) as cb:
        result = ca.send(edoc)

        receipt = result.receipt
        assert result.accepted and receipt is not None
        assert receipt.document_id == edoc.document_id
        assert receipt.message_id == result.message_id
        assert [r.organ_id for r in receipt.recipients] == [b.code]
        assert receipt.hub.subject_code == "axis-hub"
        assert schemas.parse_receipt(receipt.body) == receipt.receipt

        [delivery] = take(cb, 1)
        assert delivery.kind == "edoc" and delivery.verified
        assert delivery.sender == a.code
        assert delivery.receipt_id == receipt.receipt_id
        assert delivery.signer is not None and delivery.signer.subject_code == a.code
        assert delivery.edoc.document_id == edoc.document_id
        assert delivery.body == result.body
        assert cb.flush(15)

        [status] = take(ca, 1)
        assert status.kind == "status" and status.verified
        assert status.sender == b.code
        assert status.status.code == schemas.StatusCode.ARRIVED
        assert status.status.document_id == edoc.document_id


def test_unsigned_bytes_are_signed_and_signed_bytes_sent_unchanged(axis_hub) -> None:
    a, b = axis_hub.register("SDKA"), axis_hub.register("SDKB")
    with client_for(axis_hub, a) as ca:
        unsigned = schemas.to_bytes(a.edoc([b.code]))
        first = ca.send(unsigned)
        assert first.body != unsigned and b"Signature" in first.body
        signed = a.sign(a.edoc([b.code]))
        second = ca.send(signed)
        assert second.body == signed
        assert second.receipt is not None and second.receipt.receipt.sha256
    assert len(b.take(2)) == 2


def test_rejection_comes_back_as_the_typed_exception_of_its_code(axis_hub, broker) -> None:
    a = axis_hub.register("SDKA")
    nobody = broker.unique_code("NOBODY")
    with client_for(axis_hub, a) as ca:
        with pytest.raises(UnknownRecipient) as caught:
            ca.send(a.edoc([nobody]))
        refusal = caught.value
        assert isinstance(refusal, Rejected)
        assert refusal.code == "UNKNOWN_RECIPIENT"
        assert nobody in refusal.reason
        assert refusal.hub is not None and refusal.hub.subject_code == "axis-hub"
        assert schemas.parse_rejection(refusal.body) == refusal.rejection

        pending = ca.send(a.edoc([nobody]), wait=False)
        with pytest.raises(Rejected):
            ca.wait(pending, timeout=15)
        assert pending.rejected is not None and pending.rejected.code == "UNKNOWN_RECIPIENT"


def test_status_is_signed_sent_and_forwarded_to_the_document_sender(axis_hub) -> None:
    a, b = axis_hub.register("SDKA"), axis_hub.register("SDKB")
    edoc = a.edoc([b.code])
    with (
        client_for(axis_hub, a, auto_ack_status=False) as ca,
        client_for(axis_hub, b, auto_ack_status=False) as cb,
    ):
        ca.send(edoc)
        take(cb, 1)
        result = cb.send_status(edoc.document_id, "03", "accepted by the records office")
        assert result.receipt is not None and result.kind == "status"
        [status] = take(ca, 1)
        assert status.status.code == schemas.StatusCode.ACCEPTED
        assert status.status.description == "accepted by the records office"


def test_tampered_delivery_is_flagged_not_trusted_and_acknowledged(axis_hub) -> None:
    a, b = axis_hub.register("SDKA"), axis_hub.register("SDKB")
    edoc = a.edoc([b.code])
    signed = a.sign(edoc)
    tampered = signed.replace(edoc.subject.encode(), b"Changed on the way", 1)
    assert tampered != signed
    publish_to_inbox(axis_hub, b.code, tampered, hub_headers(a.code))
    # Correctly signed by A, but the hub's header claims another sender.
    publish_to_inbox(axis_hub, b.code, signed, hub_headers(b.code))

    with client_for(axis_hub, b) as cb:
        first, second = take(cb, 2)
        assert not first.verified and isinstance(first.error, SignatureInvalid)
        with pytest.raises(DeliveryInvalid):
            _ = first.document
        assert not second.verified and isinstance(second.error, SenderMismatch)
        assert take(cb, 1, timeout=1.5) == []  # acknowledged: they do not come back
        assert cb.flush(5)
    with axis_hub.broker.management() as mgmt:
        assert mgmt.queue(axis_hub.broker.vhost, f"axis.inbox.{b.code}").get("messages", 0) == 0
    assert a.take(1, timeout=1.0) == []  # no status 01 for what did not verify


def test_repeated_receipt_id_is_dropped_also_after_a_restart(axis_hub, tmp_path) -> None:
    a, b = axis_hub.register("SDKA"), axis_hub.register("SDKB")
    signed = a.sign(a.edoc([b.code]))
    headers = hub_headers(a.code)
    publish_to_inbox(axis_hub, b.code, signed, headers)
    publish_to_inbox(axis_hub, b.code, signed, headers)

    with client_for(axis_hub, b, state_dir=tmp_path, auto_ack_status=False) as cb:
        [delivery] = take(cb, 2, timeout=3)
        assert delivery.verified and delivery.receipt_id == headers["x-axis-receipt-id"]

    publish_to_inbox(axis_hub, b.code, signed, headers)
    with client_for(axis_hub, b, state_dir=tmp_path, auto_ack_status=False) as cb:
        assert take(cb, 1, timeout=3) == []
    with axis_hub.broker.management() as mgmt:
        assert mgmt.queue(axis_hub.broker.vhost, f"axis.inbox.{b.code}").get("messages", 0) == 0


def test_delivery_left_by_break_comes_again(axis_hub) -> None:
    a, b = axis_hub.register("SDKA"), axis_hub.register("SDKB")
    a.publish(a.sign(a.edoc([b.code])))
    with client_for(axis_hub, b, auto_ack_status=False) as cb:
        for delivery in cb.receive(timeout=15):
            first = delivery.receipt_id
            break
        [again] = take(cb, 1)
        assert again.receipt_id == first


def _close_connections_of(hub, codes: list[str], stop: threading.Event, closed: list[str]) -> None:
    with hub.broker.management() as mgmt:
        while not stop.is_set():
            for connection in mgmt.list_connections(vhost=hub.broker.vhost):
                if connection.get("user") in codes:
                    mgmt.close_connection(connection["name"], "test: broker restart")
                    closed.append(connection["user"])
            stop.wait(0.3)


def _wait_visible(hub, codes: list[str], timeout: float = 20.0) -> None:
    # The management API lists a new connection only after its next statistics tick.
    deadline = time.monotonic() + timeout
    with hub.broker.management() as mgmt:
        while time.monotonic() < deadline:
            users = {c.get("user") for c in mgmt.list_connections(vhost=hub.broker.vhost)}
            if set(codes) <= users:
                return
            time.sleep(0.2)
    raise AssertionError("the clients' connections never showed up in the management API")


def test_connection_loss_while_sending_and_receiving_loses_and_repeats_nothing(axis_hub) -> None:
    a, b = axis_hub.register("SDKA"), axis_hub.register("SDKB")
    count = 40
    edocs = [a.edoc([b.code], number=n + 1) for n in range(count)]
    stop, closed = threading.Event(), []
    closer = threading.Thread(
        target=_close_connections_of, args=(axis_hub, [a.code, b.code], stop, closed)
    )
    with client_for(axis_hub, a) as ca, client_for(axis_hub, b) as cb:
        _wait_visible(axis_hub, [a.code, b.code])
        closer.start()
        receipts = []
        received: list[Delivery] = []
        try:
            for n, edoc in enumerate(edocs):
                receipts.append(ca.send(edoc, wait=30).receipt)
                if n % 4 == 3:
                    received += take(cb, 4, timeout=30)
                time.sleep(0.25)
        finally:
            stop.set()
            closer.join()
        received += take(cb, count - len(received), timeout=30)
        received += take(cb, 1, timeout=2)  # nothing more: no delivery twice

        assert ca.reconnects >= 1 and cb.reconnects >= 1, closed
        assert all(r is not None for r in receipts)
        assert len({r.receipt_id for r in receipts}) == count
        ids = [d.edoc.document_id for d in received]
        assert sorted(ids) == sorted(e.document_id for e in edocs)
        assert len({d.receipt_id for d in received}) == count


def test_publish_whose_confirm_was_lost_is_sent_again_as_a_retry(axis_hub, monkeypatch) -> None:
    a, b = axis_hub.register("SDKA"), axis_hub.register("SDKB")
    real_publish = pika.adapters.blocking_connection.BlockingChannel.basic_publish
    lost = []

    def publish_then_lose_the_confirm(self, exchange, routing_key, body, properties, mandatory):
        real_publish(self, exchange, routing_key, body, properties, mandatory)
        if not lost:
            lost.append(properties.message_id)
            raise pika.exceptions.StreamLostError("test: connection lost before the confirm")

    monkeypatch.setattr(
        pika.adapters.blocking_connection.BlockingChannel,
        "basic_publish",
        publish_then_lose_the_confirm,
    )
    edoc = a.edoc([b.code])
    with client_for(axis_hub, a, auto_ack_status=False) as ca:
        result = ca.send(edoc, wait=30)
        assert lost == [result.message_id] and ca.reconnects == 1
        assert result.receipt is not None
        assert take(ca, 1, timeout=2) == []  # the retry's repeated receipt was dropped
    deliveries = b.take(2, timeout=3)
    assert [d.headers["x-axis-receipt-id"] for d in deliveries] == [result.receipt.receipt_id]


def test_client_from_an_agency_config_file_sends_and_receives(axis_hub, tmp_path) -> None:
    a, b = axis_hub.register("SDKA"), axis_hub.register("SDKB")
    keys = agency_files(axis_hub, a, tmp_path / "pki")
    config = tmp_path / "agency.toml"
    config.write_text(
        f"""
[agency]
code = "{a.code}"
key = "pki/{keys["key"].name}"
certificate = "pki/{keys["cert"].name}"
state_dir = "state"

[broker]
url = "{axis_hub.broker.amqp_url}"
password_file = "pki/{keys["password"].name}"

[trust]
anchors = ["pki/{keys["ca"].name}"]
hub_certificate = "pki/{keys["hub"].name}"
"""
    )
    with AgencyClient.from_config(config) as ca:
        assert ca.send(a.edoc([b.code])).accepted
    assert (tmp_path / "state" / "seen.sqlite3").exists()
    assert len(b.take(1)) == 1


def test_a_send_gets_its_answer_behind_a_full_window_of_deliveries(axis_hub) -> None:
    a, b = axis_hub.register("SDKA"), axis_hub.register("SDKB")
    for _ in range(6):
        a.publish(a.sign(a.edoc([b.code])))
    time.sleep(1.0)  # the hub has delivered them: B's inbox is full before B sends
    with client_for(axis_hub, b, prefetch=2, auto_ack_status=False) as cb:
        assert cb.send(b.edoc([a.code]), wait=15).accepted
        assert len(take(cb, 6)) == 6
