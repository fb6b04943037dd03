"""A router killed with SIGKILL mid-stream loses nothing (PROTOCOL section 6).

The hub runs as real ``axis serve`` processes; the test kills one with SIGKILL while
documents are flowing, starts another, and checks that every accepted document
reached every recipient (a repeat only with the same ``x-axis-receipt-id``), that
every sender got its receipt, and that the audit chain verifies.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import pytest
import sqlalchemy as sa

import schemas
from axis.audit import store as audit

pytestmark = pytest.mark.slow

DOCUMENTS = 400


def serve(hub) -> subprocess.Popen:
    log = hub.config.source.with_name(f"serve-{time.monotonic_ns()}.log").open("wb")
    command = [
        sys.executable,
        "-c",
        "from cli import main; main()",
        "--config",
        str(hub.config.source),
    ]
    return subprocess.Popen([*command, "serve"], stdout=log, stderr=subprocess.STDOUT)


def count(hub, sql: str) -> int:
    with hub.engine.connect() as conn:
        return conn.execute(sa.text(sql)).scalar_one()


def test_router_killed_mid_stream_loses_nothing_and_repeats_only_with_the_same_receipt_id(
    idle_hub,
) -> None:
    hub = idle_hub
    senders = [hub.register("S"), hub.register("S")]
    recipients = [hub.register("R"), hub.register("R")]
    codes = [r.code for r in recipients]
    documents = {}
    for n in range(DOCUMENTS):
        sender = senders[n % 2]
        edoc = sender.edoc(codes, number=n + 1)
        documents[edoc.document_id] = (sender, sender.sign(edoc))

    first = serve(hub)
    try:
        for sender, body in documents.values():
            sender.publish(body)
        deadline = time.monotonic() + 60
        while count(hub, "SELECT count(*) FROM documents") < DOCUMENTS // 4:
            assert time.monotonic() < deadline, "the first router made no progress"
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        killed_at = count(hub, "SELECT count(*) FROM documents")
        second = serve(hub)
        try:
            received = {code: defaultdict(set) for code in codes}
            messages = {code: 0 for code in codes}
            deadline = time.monotonic() + 120
            while any(len(received[c]) < DOCUMENTS for c in codes) and time.monotonic() < deadline:
                for recipient in recipients:
                    for message in recipient.take(50, timeout=0.2):
                        if message.type != "edoc":
                            continue
                        messages[recipient.code] += 1
                        document_id = schemas.read_header(
                            schemas.xml.parse(message.body)
                        ).document_id
                        assert message.body == documents[document_id][1]
                        received[recipient.code][document_id].add(
                            message.headers["x-axis-receipt-id"]
                        )
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0
    finally:
        if first.poll() is None:
            first.kill()

    receipts = defaultdict(set)
    for sender in senders:
        for message in sender.take(DOCUMENTS, timeout=2):
            assert message.type == "receipt"
            receipt = schemas.parse_receipt(message.body)
            receipts[receipt.document_id].add(receipt.receipt_id)
    for code in codes:
        assert set(received[code]) == set(documents), f"{code} is missing documents"
        assert all(len(ids) == 1 for ids in received[code].values()), (
            "a repeat carried another receipt id"
        )
    assert set(receipts) == set(documents)
    assert all(len(ids) == 1 for ids in receipts.values())
    assert count(hub, "SELECT count(*) FROM deliveries WHERE delivered_at IS NULL") == 0
    assert count(hub, "SELECT count(*) FROM audit_events WHERE event = 'RECEIVED'") == DOCUMENTS
    with hub.engine.connect() as conn:
        assert audit.verify(conn).ok
    repeats = sum(messages.values()) - DOCUMENTS * len(codes)
    print(
        f"killed after {killed_at} documents recorded; "
        f"{repeats} repeated deliveries, each with its receipt id"
    )


def test_two_routers_on_one_queue_keep_one_gap_free_verifiable_chain(idle_hub) -> None:
    hub = idle_hub
    senders = [hub.register("S"), hub.register("S")]
    recipient = hub.register("R")
    bodies = [
        senders[n % 2].sign(senders[n % 2].edoc([recipient.code], number=n + 1)) for n in range(300)
    ]
    command = [
        sys.executable,
        "-c",
        "from cli import main; main()",
        "--config",
        str(hub.config.source),
    ]
    routers = subprocess.Popen(
        [*command, "serve", "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with hub.broker.management() as mgmt:  # both must be consuming, or one takes the lot
            deadline = time.monotonic() + 30
            while mgmt.queue(hub.broker.vhost, "axis.inbound")["consumers"] < 2:
                assert time.monotonic() < deadline, "the two routers did not both start"
                time.sleep(0.5)
        for n, body in enumerate(bodies):
            senders[n % 2].publish(body)
        received = set()
        deadline = time.monotonic() + 90
        while len(received) < len(bodies) and time.monotonic() < deadline:
            received |= {m.body for m in recipient.take(100, timeout=0.5) if m.type == "edoc"}
        assert received == set(bodies)
        deadline = time.monotonic() + 30
        while (
            count(hub, "SELECT count(*) FROM deliveries WHERE delivered_at IS NULL")
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)
    finally:
        routers.send_signal(signal.SIGTERM)
        assert routers.wait(timeout=90) == 0
    with hub.engine.connect() as conn:
        report = audit.verify(conn)
        writers = conn.execute(
            sa.text("SELECT count(DISTINCT segment) FROM archive_entries")
        ).scalar_one()
    assert report.ok and report.checked == count(hub, "SELECT max(seq) FROM audit_events")
    assert writers >= 2, "both routers should have taken part"
