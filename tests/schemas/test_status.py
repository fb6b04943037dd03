"""schemas.status: processing statuses round-trip and validate."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from lxml import etree

from axis.rejections import SchemaInvalid
from schemas import (
    Organization,
    ResponseFor,
    StaffInfo,
    Status,
    StatusCode,
    parse_status,
    to_bytes,
    validate,
)
from schemas.xml import parse

DOC_ID = "000.00.00.G22,2026/11/20,101/VPCP-KSTT"
NOW = datetime(2026, 11, 20, 3, 4, 5, tzinfo=UTC)
G22 = "000.00.00.G22"


def status_of(code: StatusCode | str) -> Status:
    return Status.about("000.00.00.H41", DOC_ID, code, NOW, addressee=G22)


def test_a_full_status_round_trips_with_vietnamese_text() -> None:
    status = Status(
        sender=Organization("000.00.00.H41", name="Ủy ban nhân dân tỉnh Nghệ An"),
        response_for=ResponseFor(G22, "101/VPCP-KSTT", date(2026, 11, 20), DOC_ID),
        code=StatusCode.BEING_PROCESSED,
        timestamp=NOW,
        description="Đã giao Sở Nội vụ chủ trì xử lý",
        staff=StaffInfo("Văn phòng UBND tỉnh", "Nguyễn Thị Lan", "0912345678", "lan@nghean.gov.vn"),
    )
    data = to_bytes(status)
    assert b"<edXML:Timestamp>2026/11/20 10:04:05</edXML:Timestamp>" in data
    parsed = parse_status(data)
    assert parsed == status
    assert (parsed.addressee, parsed.document_sender) == (G22, G22)


def test_a_status_is_an_edxml_envelope_without_to_trace_or_body() -> None:
    root = parse(to_bytes(status_of(StatusCode.ARRIVED)))
    assert root.tag == "{http://www.mic.gov.vn/TBT/QCVN_102_2016}edXML"
    names = {etree.QName(e).localname for e in root.iter(etree.Element)}
    assert {"MessageHeader", "ResponseFor", "StatusCode"} <= names
    assert not names & {"To", "TraceHeaderList", "edXMLBody", "AttachmentEncoded"}


def test_a_recall_request_13_comes_from_the_document_sender() -> None:
    status = Status.about(G22, DOC_ID, "13", NOW, addressee="000.00.00.H41")
    assert (status.addressee, status.document_sender) == ("000.00.00.H41", G22)


@pytest.mark.parametrize("code", list(StatusCode))
def test_every_status_code_validates(code: StatusCode) -> None:
    data = to_bytes(status_of(code))
    assert validate(parse(data)) == "status"
    assert parse_status(data).code is code


def test_status_codes_are_the_protocol_table() -> None:
    assert [c.value for c in StatusCode] == ["01", "02", "03", "04", "05", "06", "13", "15", "16"]


def test_a_code_given_as_text_becomes_the_enum() -> None:
    assert status_of("06").code is StatusCode.COMPLETED


def test_an_unknown_code_is_refused_when_building() -> None:
    with pytest.raises(ValueError):
        status_of("99")


def test_an_opaque_document_id_needs_the_addressee_named() -> None:
    status = Status.about("000.00.00.H41", "a-uuid", "01", NOW, addressee=G22)
    assert status.response_for == ResponseFor(G22, None, None, "a-uuid")
    with pytest.raises(ValueError, match="ResponseFor"):
        Status(Organization("000.00.00.H41"), ResponseFor(), StatusCode.ARRIVED, NOW)


def test_parse_status_of_an_edoc_is_schema_invalid(full_edoc: object) -> None:
    with pytest.raises(SchemaInvalid, match="expected status, found edoc"):
        parse_status(to_bytes(full_edoc))  # type: ignore[arg-type]
