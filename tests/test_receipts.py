"""axis.receipts: the hub's signed receipts, rejections and chain heads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import schemas
from axis.receipts import ReceiptWriter, read_chain_head
from schemas.xml import parse
from signing import Signer, TrustStore, Verifier
from signing.pki import make_ca, make_leaf

NOW = datetime(2026, 11, 20, 3, 4, 5, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def setup():
    ca = make_ca("Hub CA")
    hub = make_leaf("axis-hub", ca)
    return ReceiptWriter(Signer(hub.key, hub.certificate)), Verifier(TrustStore([ca.certificate]))


def test_receipt_is_schema_valid_signed_and_carries_every_fact(setup) -> None:
    writer, verifier = setup
    body = writer.receipt(
        receipt_id="0b0c8a7e-1f0a-4a55-9d3b-1e6f2c7d9a10",
        message_id="5f9d2c1e-0000-4000-8000-000000000001",
        kind="edoc",
        sender="000.00.00.G22",
        document_id="000.00.00.G22,2026/11/20,101/VPCP-KSTT",
        sha256="ab" * 32,
        received_at=NOW,
        audit_seq=42,
        chain_hash="cd" * 32,
        delivered=("000.00.00.H41", "000.00.00.H29"),
        skipped=("000.00.00.H37",),
    )
    assert schemas.validate(parse(body)) == "receipt"
    assert verifier.verify(body, at=datetime.now(UTC)).subject_code == "axis-hub"
    receipt = schemas.parse_receipt(body)
    assert (receipt.audit_seq, receipt.chain_hash, receipt.received_at) == (42, "cd" * 32, NOW)
    assert [(r.organ_id, r.outcome) for r in receipt.recipients] == [
        ("000.00.00.H41", "delivered"),
        ("000.00.00.H29", "delivered"),
        ("000.00.00.H37", "suspended"),
    ]


def test_rejection_is_schema_valid_signed_and_names_its_code(setup) -> None:
    writer, verifier = setup
    body = writer.rejection(
        receipt_id="0b0c8a7e-1f0a-4a55-9d3b-1e6f2c7d9a11",
        code="SIGNATURE_INVALID",
        reason="digest mismatch: nội dung đã bị thay đổi",
        rejected_at=NOW,
        audit_seq=7,
        chain_hash="ef" * 32,
        message_id=None,
        document_id=None,
        sender="000.00.00.G01",
    )
    assert schemas.validate(parse(body)) == "rejection"
    verifier.verify(body, at=datetime.now(UTC))
    rejection = schemas.parse_rejection(body)
    assert (rejection.code, rejection.reason) == (
        "SIGNATURE_INVALID",
        "digest mismatch: nội dung đã bị thay đổi",
    )


def test_chain_head_is_signed_and_reads_back(setup) -> None:
    writer, verifier = setup
    body = writer.chain_head(seq=1000, chain_hash="12" * 32, signed_at=NOW)
    verifier.verify(body, at=datetime.now(UTC))
    assert read_chain_head(parse(body)) == (1000, "12" * 32, "2026-11-20T03:04:05.123456Z")
