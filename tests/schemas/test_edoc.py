"""schemas.edoc: building, parsing and round-tripping edXML documents."""

from __future__ import annotations

import base64
import dataclasses
import os
import time
import unicodedata
from datetime import UTC, date, datetime, timedelta

import pytest
from lxml import etree

from axis.rejections import Malformed, SchemaInvalid, TooLarge
from schemas import (
    Attachment,
    Business,
    BusinessDocType,
    Edoc,
    Organization,
    Priority,
    Receiver,
    Reference,
    Replacement,
    ResponseFor,
    StaffInfo,
    TraceHeader,
    UpdateInfo,
    parse_edoc,
    to_bytes,
    to_element,
    validate,
)
from schemas import edoc as edoc_module
from schemas.xml import parse

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
SUBJECT = "Về việc triển khai Nghị định số 30/2020/NĐ-CP về công tác văn thư"


def minimal(**changes: object) -> Edoc:
    fields: dict[str, object] = {
        "sender": Organization("000.00.00.G22"),
        "recipients": [Organization("000.00.00.H41")],
        "number": "101",
        "notation": "VPCP-KSTT",
        "promulgation_date": date(2026, 11, 20),
        "subject": SUBJECT,
    }
    fields.update(changes)
    return Edoc(**fields)  # type: ignore[arg-type]


def q(name: str) -> str:
    return f"{{{NS}}}{name}"


def subject_element(root: etree._Element) -> etree._Element:
    found = root.find(f".//{q('Subject')}")
    assert found is not None
    return found


def test_full_edoc_round_trips_through_bytes(full_edoc: Edoc) -> None:
    assert parse_edoc(to_bytes(full_edoc)) == full_edoc


def test_minimal_edoc_round_trips_through_bytes() -> None:
    edoc = minimal()
    parsed = parse_edoc(to_bytes(edoc))
    assert parsed == edoc
    assert parsed.attachments == () and parsed.signer is None and parsed.due_date is None


def test_vietnamese_subject_is_written_as_raw_utf8_and_read_back_exactly() -> None:
    data = to_bytes(minimal())
    assert SUBJECT.encode("utf-8") in data
    assert parse_edoc(data).subject == SUBJECT


def test_decomposed_vietnamese_text_is_not_normalized() -> None:
    nfd = unicodedata.normalize("NFD", SUBJECT)
    assert nfd != SUBJECT
    assert parse_edoc(to_bytes(minimal(subject=nfd))).subject == nfd


def test_markup_characters_and_carriage_returns_in_text_round_trip() -> None:
    content = 'Điều 1: <b>&amp;</b> "trích dẫn" \r\nDòng 2\rDòng 3\t '
    assert parse_edoc(to_bytes(minimal(content=content))).content == content


def test_leading_and_trailing_whitespace_in_subject_is_kept() -> None:
    subject = "  " + SUBJECT + "\n"
    assert parse_edoc(to_bytes(minimal(subject=subject))).subject == subject


def test_attachment_bytes_round_trip_exactly() -> None:
    data = os.urandom(50_000) + b"\x00\r\n\xff"
    edoc = minimal(attachments=[Attachment("att-1", "application/pdf", "Văn bản.pdf", data)])
    parsed = parse_edoc(to_bytes(edoc))
    assert parsed.attachments[0].data == data
    assert parsed.attachments == edoc.attachments


def test_empty_attachment_round_trips() -> None:
    edoc = minimal(attachments=[Attachment("att-1", "text/plain", "rỗng.txt", b"")])
    assert parse_edoc(to_bytes(edoc)).attachments[0].data == b""


def test_multiple_recipients_and_a_group_keep_their_order(full_edoc: Edoc) -> None:
    parsed = parse_edoc(to_bytes(full_edoc))
    assert parsed.recipient_ids == ("000.00.00.H41", "000.00.00.G14", "@provinces")


def test_response_for_round_trips_and_can_be_made_from_a_document(full_edoc: Edoc) -> None:
    reply = minimal(
        sender=Organization("000.00.00.H41"),
        notation="UBND-VX",
        response_for=[ResponseFor.of(full_edoc)],
    )
    parsed = parse_edoc(to_bytes(reply))
    assert parsed.response_for == (
        ResponseFor("000.00.00.G22", "101/VPCP-KSTT", date(2026, 11, 20), full_edoc.document_id),
    )


def test_revoke_naming_its_target_round_trips() -> None:
    original = "000.00.00.G22,2026/11/20,101/VPCP-KSTT"
    revoke = minimal(
        number="102",
        business=Business(BusinessDocType.REVOKE, "Văn bản ban hành sai thẩm quyền", original),
    )
    parsed = parse_edoc(to_bytes(revoke))
    assert parsed.business == revoke.business
    assert parsed.business.doc_type is BusinessDocType.REVOKE
    assert parsed.targets == (original,)


def test_a_revoke_without_bussiness_document_id_targets_its_own_document_id() -> None:
    revoke = minimal(business=Business(BusinessDocType.REVOKE, "Thu hồi"))
    assert parse_edoc(to_bytes(revoke)).targets == (revoke.document_id,)


def test_update_and_replacement_round_trip_with_their_lists() -> None:
    original = "000.00.00.G22,2026/11/20,101/VPCP-KSTT"
    update = Business(
        BusinessDocType.UPDATE,
        "Cập nhật nơi nhận",
        original,
        paper=False,
        update=UpdateInfo(True, True, [Receiver("000.00.00.H29", 1)]),
        staff=StaffInfo("Văn phòng", "Nguyễn Văn Bình", "0912345678", "vt@chinhphu.vn"),
    )
    replace = Business(
        BusinessDocType.REPLACE,
        "Thay thế",
        replacements=[Replacement(original, ["000.00.00.H41"]), Replacement("uuid-2")],
    )
    for business in (update, replace):
        edoc = minimal(number="103", business=business)
        assert parse_edoc(to_bytes(edoc)) == edoc
    assert minimal(business=replace).targets == (original, "uuid-2")


def test_an_update_or_replacement_naming_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="names its target"):
        Business(BusinessDocType.UPDATE)
    with pytest.raises(ValueError, match="names what it replaces"):
        Business(BusinessDocType.REPLACE)


def test_a_new_document_may_carry_an_unrelated_bussiness_document_id() -> None:
    """The national SDK's builder fills it for new documents too; it targets nothing."""
    edoc = minimal(business=Business(BusinessDocType.NEW, None, "000.00.00.G22,2015/09/30,1/X"))
    assert parse_edoc(to_bytes(edoc)).targets == ()


def test_document_id_is_derived_from_sender_date_number_and_notation() -> None:
    assert minimal().document_id == "000.00.00.G22,2026/11/20,101/VPCP-KSTT"


def test_enum_fields_accept_plain_ints_and_refuse_out_of_range() -> None:
    assert minimal(priority=3).priority is Priority.FLASH
    with pytest.raises(ValueError):
        minimal(priority=7)


def test_lists_are_stored_as_tuples_so_equal_documents_compare_equal() -> None:
    as_list = minimal(recipients=[Organization("000.00.00.H41")])
    as_tuple = minimal(recipients=(Organization("000.00.00.H41"),))
    assert as_list == as_tuple and isinstance(as_list.recipients, tuple)


def test_to_bytes_is_deterministic_utf8_with_a_declaration(full_edoc: Edoc) -> None:
    first, second = to_bytes(full_edoc), to_bytes(full_edoc)
    assert first == second
    assert first.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert b">\n<" not in first.split(b"\n", 1)[1]


def test_built_documents_validate(full_edoc: Edoc) -> None:
    assert validate(to_element(full_edoc)) == "edoc"
    assert validate(parse(to_bytes(minimal()))) == "edoc"


def test_trace_timestamps_are_written_in_vietnamese_time_and_read_back_as_the_same_moment() -> None:
    edoc = minimal(
        trace=[TraceHeader("000.00.00.G22", datetime(2026, 11, 20, 1, 0, 7, tzinfo=UTC))]
    )
    data = to_bytes(edoc)
    assert b"<edXML:Timestamp>2026/11/20 08:00:07</edXML:Timestamp>" in data
    stamp = parse_edoc(data).trace[0].timestamp
    assert stamp.utcoffset() == timedelta(hours=7)
    assert stamp == datetime(2026, 11, 20, 1, 0, 7, tzinfo=UTC)


def test_dates_are_written_yyyy_mm_dd_with_slashes() -> None:
    data = to_bytes(minimal(due_date=date(2026, 12, 1)))
    assert b"<edXML:PromulgationDate>2026/11/20<" in data and b"<edXML:DueDate>2026/12/01<" in data


def test_a_naive_datetime_cannot_be_serialized() -> None:
    edoc = minimal(trace=[TraceHeader("000.00.00.G22", datetime(2026, 11, 20, 8, 0))])
    with pytest.raises(ValueError, match="timezone"):
        to_bytes(edoc)


def test_header_only_parse_keeps_the_manifest_but_no_attachments(full_edoc: Edoc) -> None:
    parsed = parse_edoc(to_bytes(full_edoc), with_attachments=False)
    assert parsed.attachments == ()
    assert parsed.manifest == (
        Reference("att-1", "application/pdf", "Công văn 101.pdf"),
        Reference("att-2", "text/plain", "Phụ lục.txt"),
    )
    assert dataclasses.replace(parsed, attachments=full_edoc.attachments) == full_edoc


def test_header_only_parse_does_not_decode_attachments(
    full_edoc: Edoc, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> bytes:
        raise AssertionError("an attachment was decoded")

    root = parse(to_bytes(full_edoc))
    monkeypatch.setattr(edoc_module.base64, "b64decode", refuse)
    assert parse_edoc(root, with_attachments=False).subject == full_edoc.subject
    with pytest.raises(AssertionError, match="decoded"):
        parse_edoc(root)


def test_header_only_parse_ignores_undecodable_attachment_content(full_edoc: Edoc) -> None:
    root = parse(to_bytes(full_edoc))
    for value in root.iter(q("ContentTransferEncoded")):
        value.text = "%%% not base64 %%%"
    parsed = parse_edoc(root, with_attachments=False, check_schema=False)
    assert parsed.document_id == full_edoc.document_id
    with pytest.raises(SchemaInvalid, match="base64"):
        parse_edoc(root, check_schema=False)


def test_base64_wrapped_in_lines_is_accepted() -> None:
    data = os.urandom(300)
    edoc = minimal(attachments=[Attachment("a", "application/pdf", "a.pdf", data)])
    root = parse(to_bytes(edoc))
    value = next(root.iter(q("ContentTransferEncoded")))
    encoded = base64.encodebytes(data).decode("ascii")
    assert "\n" in encoded
    value.text = encoded
    assert parse_edoc(etree.tostring(root)).attachments[0].data == data


def test_a_header_only_edoc_cannot_be_serialized_again(full_edoc: Edoc) -> None:
    parsed = parse_edoc(to_bytes(full_edoc), with_attachments=False)
    with pytest.raises(ValueError, match="without attachments"):
        to_bytes(parsed)


def test_a_comment_inside_subject_does_not_change_the_subject() -> None:
    data = to_bytes(minimal())
    tampered = data.replace("Nghị định".encode(), "Nghị<!-- chú thích --> định".encode())
    assert tampered != data
    assert parse_edoc(tampered).subject == SUBJECT


def test_a_processing_instruction_inside_subject_does_not_hide_text() -> None:
    data = to_bytes(minimal())
    tampered = data.replace("Nghị định".encode(), "Nghị<?pi ẩn?> định".encode())
    assert tampered != data
    assert parse_edoc(tampered).subject == SUBJECT


def test_parse_edoc_of_a_status_is_schema_invalid() -> None:
    from schemas import Status, StatusCode

    doc = minimal()
    status = Status.about(
        "000.00.00.H41",
        doc.document_id,
        StatusCode.ARRIVED,
        datetime.now(UTC),
        addressee="000.00.00.G22",
    )
    with pytest.raises(SchemaInvalid, match="expected edoc, found status"):
        parse_edoc(to_bytes(status))


def test_reading_an_unvalidated_tree_without_subject_is_schema_invalid() -> None:
    root = parse(to_bytes(minimal()))
    subject = subject_element(root)
    subject.getparent().remove(subject)
    with pytest.raises(SchemaInvalid, match="no Subject"):
        parse_edoc(root, check_schema=False)


def test_reading_an_unvalidated_tree_with_a_bad_priority_is_schema_invalid() -> None:
    root = parse(to_bytes(minimal()))
    next(root.iter(q("Priority"))).text = "7"
    with pytest.raises(SchemaInvalid):
        parse_edoc(root, check_schema=False)


ROOT_OPEN = f'<edXML:edXML xmlns:edXML="{NS}">'.encode()
ROOT_CLOSE = b"</edXML:edXML>"


def fails_fast(exc_type: type[Exception], data: bytes, **kwargs: object) -> None:
    started = time.perf_counter()
    with pytest.raises(exc_type):
        parse_edoc(data, **kwargs)  # type: ignore[arg-type]
    assert time.perf_counter() - started < 1.0


def test_xxe_is_malformed(tmp_path: object) -> None:
    data = (
        b'<?xml version="1.0"?><!DOCTYPE edXML:edXML '
        b'[<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + ROOT_OPEN + b"&xxe;" + ROOT_CLOSE
    )
    fails_fast(Malformed, data)


def test_billion_laughs_is_malformed() -> None:
    entities = b'<!ENTITY lol0 "lollollollollollollollollollol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10)
    )
    data = b"<!DOCTYPE edXML:edXML [" + entities + b"]>" + ROOT_OPEN + b"&lol9;" + ROOT_CLOSE
    fails_fast(Malformed, data)


def test_quadratic_blowup_is_malformed() -> None:
    entity = b'<!ENTITY a "' + b"x" * 50_000 + b'">'
    data = b"<!DOCTYPE edXML:edXML [" + entity + b"]>" + ROOT_OPEN + b"&a;" * 20_000 + ROOT_CLOSE
    fails_fast(Malformed, data)


def test_nesting_300_deep_is_malformed() -> None:
    data = ROOT_OPEN + b"<x>" * 300 + b"</x>" * 300 + ROOT_CLOSE
    fails_fast(Malformed, data)


def test_a_body_in_another_encoding_is_malformed() -> None:
    data = to_bytes(minimal()).replace(b"UTF-8", b"ISO-8859-1")
    fails_fast(Malformed, data)


def test_bytes_that_are_not_utf8_are_malformed() -> None:
    data = to_bytes(minimal()).replace("Về".encode(), b"V\xe8")
    fails_fast(Malformed, data)


def test_utf16_body_is_malformed() -> None:
    text = to_bytes(minimal()).decode("utf-8").replace("UTF-8", "UTF-16")
    fails_fast(Malformed, text.encode("utf-16"))


@pytest.mark.parametrize("data", [b"", b"   \n"])
def test_an_empty_body_is_malformed(data: bytes) -> None:
    fails_fast(Malformed, data)


def test_a_body_over_the_limit_is_too_large() -> None:
    data = to_bytes(minimal(content="x" * 5_000))
    fails_fast(TooLarge, data, max_bytes=4_096)


def test_truncated_xml_is_malformed() -> None:
    data = to_bytes(minimal())
    fails_fast(Malformed, data[: len(data) // 2])
