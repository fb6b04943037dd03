"""schemas.hub: AxisReceipt and AxisRejection round-trip and validate."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from axis.rejections import CODES, DuplicateConflict, SchemaInvalid
from schemas import (
    AxisReceipt,
    AxisRejection,
    RecipientOutcome,
    parse_receipt,
    parse_rejection,
    to_bytes,
    to_element,
    validate,
)
from schemas.hub import canonical_receipt, read_receipt
from schemas.validate import schema_path

NOW = datetime(2026, 11, 20, 1, 2, 3, 4, tzinfo=UTC)
DOC_ID = "000.00.00.G22,2026/11/20,101/VPCP-KSTT"
XS = "{http://www.w3.org/2001/XMLSchema}"


def receipt(**changes: object) -> AxisReceipt:
    fields: dict[str, object] = {
        "receipt_id": "6f1c2a0e-3b7d-4e0a-9a43-0d2c9a7e5b11",
        "message_id": "2d3e4f50-aaaa-4bbb-8ccc-123456789abc",
        "kind": "edoc",
        "sender": "000.00.00.G22",
        "sha256": hashlib.sha256(b"body").hexdigest(),
        "received_at": NOW,
        "audit_seq": 42,
        "chain_hash": hashlib.sha256(b"chain").hexdigest(),
        "recipients": [
            RecipientOutcome("000.00.00.H41", "delivered", NOW),
            RecipientOutcome("000.00.00.H29", "delivered", NOW),
        ],
        "document_id": DOC_ID,
    }
    fields.update(changes)
    return AxisReceipt(**fields)  # type: ignore[arg-type]


def test_a_receipt_round_trips() -> None:
    data = to_bytes(receipt())
    assert parse_receipt(data) == receipt()
    assert b"<ReceivedAt>2026-11-20T01:02:03.000004Z</ReceivedAt>" in data


def test_a_status_receipt_without_document_id_or_delivery_time_round_trips() -> None:
    value = receipt(kind="status", document_id=None, recipients=[RecipientOutcome("000.00.00.G22")])
    assert parse_receipt(to_bytes(value)) == value


def test_a_rejection_round_trips_with_a_vietnamese_reason() -> None:
    value = AxisRejection(
        receipt_id="r-1",
        code="DUPLICATE_CONFLICT",
        reason="Số văn bản đã được gửi với nội dung khác",
        rejected_at=NOW,
        audit_seq=7,
        chain_hash="0" * 64,
        message_id="m-1",
        document_id=DOC_ID,
        sender="000.00.00.G22",
    )
    parsed = parse_rejection(to_bytes(value))
    assert parsed == value
    assert isinstance(parsed.to_exception(), DuplicateConflict)


def test_a_rejection_with_only_the_required_fields_validates() -> None:
    value = AxisRejection("r-1", "MALFORMED", "not XML", NOW, 1, "f" * 64)
    assert validate(to_element(value)) == "rejection"
    assert parse_rejection(to_bytes(value)) == value


def test_the_xsd_rejection_codes_are_exactly_the_protocol_codes() -> None:
    xsd = etree.parse(str(schema_path("hub.xsd")))
    (code_type,) = xsd.iterfind(f"{XS}simpleType[@name='RejectionCodeType']")
    enumerated = tuple(e.get("value") for e in code_type.iter(f"{XS}enumeration"))
    assert enumerated == CODES


@pytest.mark.parametrize("code", CODES)
def test_every_protocol_code_validates_in_a_rejection(code: str) -> None:
    assert validate(to_element(AxisRejection("r", code, "why", NOW, 1, "a" * 64))) == "rejection"


def test_an_unknown_rejection_code_is_refused_when_building() -> None:
    with pytest.raises(ValueError, match="rejection code"):
        AxisRejection("r", "NOPE", "why", NOW, 1, "a" * 64)


def test_an_unknown_rejection_code_is_schema_invalid_on_the_wire() -> None:
    root = to_element(AxisRejection("r", "MALFORMED", "why", NOW, 1, "a" * 64))
    root.find("{urn:axis:hub:1}Code").text = "NOPE"  # type: ignore[union-attr]
    with pytest.raises(SchemaInvalid, match="Code"):
        validate(root)


@pytest.mark.parametrize(
    "field,value",
    [
        ("Sha256", "A" * 64),
        ("Sha256", "a" * 63),
        ("ChainHash", "xyz"),
        ("AuditSeq", "0"),
        ("AuditSeq", "-3"),
        ("ReceivedAt", "2026-11-20T01:02:03Z"),
        ("ReceivedAt", "2026-11-20T08:02:03.000004+07:00"),
        ("Kind", "rejection"),
    ],
)
def test_receipt_field_violations_are_schema_invalid(field: str, value: str) -> None:
    root = to_element(receipt())
    root.find(f"{{urn:axis:hub:1}}{field}").text = value  # type: ignore[union-attr]
    with pytest.raises(SchemaInvalid, match=field):
        validate(root)


def test_a_receipt_listing_a_recipient_twice_is_schema_invalid() -> None:
    twice = [RecipientOutcome("000.00.00.H41"), RecipientOutcome("000.00.00.H41")]
    with pytest.raises(SchemaInvalid):
        validate(to_element(receipt(recipients=twice)))


def test_a_receipt_kind_other_than_edoc_or_status_is_refused_when_building() -> None:
    with pytest.raises(ValueError, match="edoc or a status"):
        receipt(kind="receipt")


def test_parse_receipt_of_a_rejection_is_schema_invalid() -> None:
    data = to_bytes(AxisRejection("r", "MALFORMED", "why", NOW, 1, "a" * 64))
    with pytest.raises(SchemaInvalid, match="expected receipt"):
        parse_receipt(data)


XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
"""Any text, empty included, and what XML 1.0 cannot carry (control characters, U+FFFE)."""


def _xml_compatible(text: str) -> bool:
    return not any((ord(c) < 0x20 and c not in "\t\n\r") or c in "\ufffe\uffff" for c in text)


@settings(max_examples=300, deadline=None)
@given(
    texts=st.fixed_dictionaries(
        {
            "receipt_id": XML_TEXT,
            "message_id": XML_TEXT,
            "sender": XML_TEXT,
            "sha256": XML_TEXT,
            "chain_hash": XML_TEXT,
            "document_id": st.none() | XML_TEXT,
        }
    ),
    recipients=st.lists(
        st.builds(RecipientOutcome, XML_TEXT, XML_TEXT, st.none() | st.just(NOW)), max_size=3
    ),
    kind=st.sampled_from(["edoc", "status"]),
)
def test_the_canonical_receipt_is_the_c14n_of_the_built_one_byte_for_byte(
    texts: dict[str, str | None], recipients: list[RecipientOutcome], kind: str
) -> None:
    value = receipt(**texts, recipients=recipients, kind=kind)
    every_text = [t for t in texts.values() if t is not None]
    every_text += [t for r in recipients for t in (r.organ_id, r.outcome)]
    if not all(_xml_compatible(t) for t in every_text):
        with pytest.raises(ValueError):
            canonical_receipt(value)
        with pytest.raises(ValueError):  # as lxml refuses it
            to_element(value)
        return
    data = canonical_receipt(value)
    assert data == etree.tostring(to_element(value), method="c14n", exclusive=True)
    assert read_receipt(etree.fromstring(data)) == value


def test_the_canonical_receipt_escapes_markup_and_carriage_returns() -> None:
    data = canonical_receipt(receipt(sender="a&b<c>d\r\ne", recipients=[]))
    assert b"<Sender>a&amp;b&lt;c&gt;d&#xD;\ne</Sender>" in data
    assert data.endswith(b"<Recipients></Recipients></AxisReceipt>")
