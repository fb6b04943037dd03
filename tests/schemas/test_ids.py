"""schemas.ids: DocumentId composition and parsing."""

from __future__ import annotations

from datetime import date

import pytest

from schemas import DocumentId, is_group_id, is_message_id, is_organ_id, make_document_id


def test_make_document_id_follows_the_protocol_example() -> None:
    assert (
        make_document_id("000.00.00.G22", date(2026, 11, 20), 101, "VPCP-KSTT")
        == "000.00.00.G22,2026/11/20,101/VPCP-KSTT"
    )


def test_a_document_id_parses_into_its_parts_and_back() -> None:
    text = "000.00.00.H41,2026/01/05,12/QĐ-UBND"
    parts = DocumentId.parse(text)
    assert parts == DocumentId("000.00.00.H41", date(2026, 1, 5), "12", "QĐ-UBND")
    assert parts.code == "12/QĐ-UBND"
    assert str(parts) == text


def test_a_notation_may_carry_a_year_and_slashes() -> None:
    parts = DocumentId.parse("000.00.00.G22,2020/03/05,30/2020/NĐ-CP")
    assert (parts.number, parts.notation) == ("30", "2020/NĐ-CP")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "000.00.00.G22,2026/11/20,101",
        "000.00.00.G22,2026/11/31,101/VPCP-KSTT",
        "000.00.00.g22,2026/11/20,101/VPCP-KSTT",
        "000.00.00.G22,26/11/20,101/VPCP-KSTT",
        "000.00.00.G22,2026/11/20,101/VPCP KSTT",
    ],
)
def test_malformed_document_ids_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        DocumentId.parse(text)


def test_make_document_id_refuses_parts_that_cannot_form_one() -> None:
    with pytest.raises(ValueError):
        make_document_id("@provinces", date(2026, 11, 20), 1, "VPCP")


def test_organ_and_group_ids() -> None:
    assert is_organ_id("000.00.00.G22") and not is_organ_id("@provinces")
    assert is_group_id("@provinces") and is_group_id("@mien-bac-2")
    assert not is_group_id("@Provinces") and not is_group_id("provinces")


def test_message_ids_that_hub_messages_can_carry() -> None:
    assert is_message_id("2d3e4f50-aaaa-4bbb-8ccc-123456789abc")
    assert not is_message_id(None) and not is_message_id("")
    assert not is_message_id("has space") and not is_message_id("x" * 256)
    assert not is_message_id("ctl\x01") and not is_message_id("mã")
