"""schemas.status: processing statuses round-trip and validate."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from axis.rejections import SchemaInvalid
from schemas import StaffInfo, Status, StatusCode, parse_status, to_bytes, validate
from schemas.xml import parse

DOC_ID = "000.00.00.G22,2026/11/20,101/VPCP-KSTT"
NOW = datetime(2026, 11, 20, 3, 4, 5, 123456, tzinfo=UTC)


def test_a_full_status_round_trips_with_vietnamese_text() -> None:
    status = Status(
        sender="000.00.00.H41",
        document_id=DOC_ID,
        code=StatusCode.ASSIGNED,
        timestamp=NOW,
        description="Đã giao Sở Nội vụ chủ trì xử lý",
        staff=StaffInfo("Văn phòng UBND tỉnh", "Nguyễn Thị Lan", "0912345678", "lan@nghean.gov.vn"),
    )
    parsed = parse_status(to_bytes(status))
    assert parsed == status
    assert parsed.document_sender == "000.00.00.G22"


@pytest.mark.parametrize("code", list(StatusCode))
def test_every_status_code_validates(code: StatusCode) -> None:
    data = to_bytes(Status("000.00.00.H41", DOC_ID, code, NOW))
    assert validate(parse(data)) == "status"
    assert parse_status(data).code is code


def test_status_codes_are_the_protocol_table() -> None:
    assert [c.value for c in StatusCode] == ["01", "02", "03", "04", "05", "06", "13", "15", "16"]


def test_a_code_given_as_text_becomes_the_enum() -> None:
    assert Status("000.00.00.H41", DOC_ID, "06", NOW).code is StatusCode.COMPLETED  # type: ignore[arg-type]


def test_an_unknown_code_is_refused_when_building() -> None:
    with pytest.raises(ValueError):
        Status("000.00.00.H41", DOC_ID, "99", NOW)  # type: ignore[arg-type]


def test_a_malformed_document_id_is_refused_when_building() -> None:
    with pytest.raises(ValueError, match="DocumentId"):
        Status("000.00.00.H41", "not-an-id", StatusCode.ARRIVED, NOW)


def test_parse_status_of_an_edoc_is_schema_invalid(full_edoc: object) -> None:
    with pytest.raises(SchemaInvalid, match="expected status, found edoc"):
        parse_status(to_bytes(full_edoc))  # type: ignore[arg-type]
