"""schemas.validate: the XSDs accept what the API builds and refuse specific violations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from lxml import etree

from axis.rejections import SchemaInvalid
from schemas import (
    AxisReceipt,
    AxisRejection,
    Business,
    BusinessDocType,
    Edoc,
    Replacement,
    ResponseFor,
    Status,
    StatusCode,
    to_bytes,
    to_element,
    validate,
)
from schemas.samples import sample_edoc
from schemas.xml import parse

NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DS = "http://www.w3.org/2000/09/xmldsig#"
NOW = datetime(2026, 11, 20, 1, 2, 3, 4, tzinfo=UTC)
DOC_ID = "000.00.00.G22,2026/11/20,101/VPCP-KSTT"
G22 = "000.00.00.G22"


def q(name: str) -> str:
    return f"{{{NS}}}{name}"


def first(root: etree._Element, name: str) -> etree._Element:
    found = next(root.iter(q(name)), None)
    assert found is not None, name
    return found


def mutated(edoc: Edoc, change: Callable[[etree._Element], object]) -> etree._Element:
    root = parse(to_bytes(edoc))
    change(root)
    # Re-parse so line numbers and the tree are exactly what a receiver would see.
    return parse(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def signature() -> etree._Element:
    sig = etree.Element(f"{{{DS}}}Signature", nsmap={"ds": DS})
    etree.SubElement(sig, f"{{{DS}}}SignedInfo")
    return sig


def header(root: etree._Element) -> etree._Element:
    return first(root, "edXMLHeader")


def test_every_built_kind_validates_and_is_named(full_edoc: Edoc) -> None:
    status = Status.about("000.00.00.H41", DOC_ID, StatusCode.ARRIVED, NOW, addressee=G22)
    receipt = AxisReceipt("r-1", "m-1", "edoc", "000.00.00.G22", "a" * 64, NOW, 1, "b" * 64)
    rejection = AxisRejection("r-2", "MALFORMED", "not XML", NOW, 2, "c" * 64)
    assert validate(to_element(full_edoc)) == "edoc"
    assert validate(to_element(status)) == "status"
    assert validate(to_element(receipt)) == "receipt"
    assert validate(to_element(rejection)) == "rejection"


def test_an_element_tree_is_accepted_as_well_as_its_root(full_edoc: Edoc) -> None:
    assert validate(to_element(full_edoc).getroottree()) == "edoc"


def test_a_signed_document_with_one_trailing_signature_validates(full_edoc: Edoc) -> None:
    assert validate(mutated(full_edoc, lambda r: header(r).append(signature()))) == "edoc"


def test_two_signatures_are_schema_invalid(full_edoc: Edoc) -> None:
    def sign_twice(root: etree._Element) -> None:
        header(root).append(signature())
        header(root).append(signature())

    with pytest.raises(SchemaInvalid, match="ds:Signature"):
        validate(mutated(full_edoc, sign_twice))


def test_a_signature_that_is_not_last_is_schema_invalid(full_edoc: Edoc) -> None:
    with pytest.raises(SchemaInvalid):
        validate(mutated(full_edoc, lambda r: header(r).insert(0, signature())))


def test_another_dsig_element_in_place_of_signature_is_schema_invalid(full_edoc: Edoc) -> None:
    with pytest.raises(SchemaInvalid):
        validate(mutated(full_edoc, lambda r: header(r).append(etree.Element(f"{{{DS}}}Object"))))


def test_missing_subject_is_schema_invalid_naming_line_and_element(full_edoc: Edoc) -> None:
    def drop_subject(root: etree._Element) -> None:
        subject = first(root, "Subject")
        subject.getparent().remove(subject)

    with pytest.raises(SchemaInvalid) as caught:
        validate(mutated(full_edoc, drop_subject))
    assert caught.value.code == "SCHEMA_INVALID"
    assert caught.value.reason.startswith("line 2: ")
    assert "MessageHeader" in caught.value.reason and "Subject" in caught.value.reason
    assert "{http" not in caught.value.reason


def test_blank_subject_is_schema_invalid(full_edoc: Edoc) -> None:
    def blank(root: etree._Element) -> None:
        first(root, "Subject").text = "  \n "

    with pytest.raises(SchemaInvalid, match="Subject"):
        validate(mutated(full_edoc, blank))


@pytest.mark.parametrize(
    "organ_id", ["000.00.00.g22", "000-00-00-G22", "", "0" * 36, "Bộ.G22", "@Provinces"]
)
def test_a_bad_sender_organ_id_is_schema_invalid(full_edoc: Edoc, organ_id: str) -> None:
    def change(root: etree._Element) -> None:
        first(first(root, "From"), "OrganId").text = organ_id

    with pytest.raises(SchemaInvalid, match="OrganId"):
        validate(mutated(full_edoc, change))


def test_a_group_is_not_a_valid_sender(full_edoc: Edoc) -> None:
    def change(root: etree._Element) -> None:
        first(first(root, "From"), "OrganId").text = "@provinces"

    with pytest.raises(SchemaInvalid, match="OrganId"):
        validate(mutated(full_edoc, change))


@pytest.mark.parametrize("group", ["@-bad", "@UPPER", "@" + "a" * 33, "@"])
def test_a_bad_group_recipient_is_schema_invalid(full_edoc: Edoc, group: str) -> None:
    def change(root: etree._Element) -> None:
        first(first(root, "To"), "OrganId").text = group

    with pytest.raises(SchemaInvalid, match="OrganId"):
        validate(mutated(full_edoc, change))


def test_the_same_recipient_twice_is_schema_invalid() -> None:
    edoc = sample_edoc("000.00.00.G22", ["000.00.00.H41", "000.00.00.H41"])
    with pytest.raises(SchemaInvalid, match=r"UniqueRecipient|Duplicate"):
        validate(to_element(edoc))


@pytest.mark.parametrize(
    "document_id",
    ["", "000.00.00.G22,2026/11/20,101/VPCP KSTT", "x" * 201, "tab\there"],
)
def test_a_document_id_with_spaces_or_too_long_is_schema_invalid(
    full_edoc: Edoc, document_id: str
) -> None:
    def change(root: etree._Element) -> None:
        first(root, "DocumentId").text = document_id

    with pytest.raises(SchemaInvalid, match="DocumentId"):
        validate(mutated(full_edoc, change))


@pytest.mark.parametrize(
    "document_id",
    [
        "000.00.00.G22,2026-11-20,101/VPCP-KSTT",
        "3f2b8c1e-6d4a-4f7e-9b1a-2c5d8e9f0a1b",
        "000.00.00.H41,2026/11/20,101/VPCP-KSTT",
        "000.00.00.G22,2026/11/21,102/VPCP-KSTT",
    ],
)
def test_an_opaque_or_foreign_document_id_is_valid(full_edoc: Edoc, document_id: str) -> None:
    """EDXML.md 1.1: a DocumentId may be opaque, and its OrganId is not always the sender's."""

    def change(root: etree._Element) -> None:
        first(root, "DocumentId").text = document_id

    assert validate(mutated(full_edoc, change)) == "edoc"


@pytest.mark.parametrize("text", ["2026/02/31", "2026-11-20", "20/11/2026", "2026/11/2"])
def test_a_promulgation_date_not_yyyy_mm_dd_or_not_in_the_calendar_is_schema_invalid(
    full_edoc: Edoc, text: str
) -> None:
    def change(root: etree._Element) -> None:
        first(root, "PromulgationDate").text = text

    with pytest.raises(SchemaInvalid, match="PromulgationDate"):
        validate(mutated(full_edoc, change))


def test_a_reply_with_some_but_not_all_of_its_parts_is_schema_invalid() -> None:
    reply = ResponseFor("000.00.00.H41", None, None, "000.00.00.H41,2026/11/01,55/UBND-VX")
    edoc = sample_edoc("000.00.00.G22", ["000.00.00.H41"], response_for=[reply])
    with pytest.raises(SchemaInvalid, match="ResponseFor has no Code, PromulgationDate"):
        validate(to_element(edoc))


def test_an_empty_reply_is_valid() -> None:
    edoc = sample_edoc("000.00.00.G22", ["000.00.00.H41"], response_for=[ResponseFor()])
    assert validate(to_element(edoc)) == "edoc"


@pytest.mark.parametrize("priority", ["7", "-1", "01", "1.0", ""])
def test_a_priority_outside_0_to_4_is_schema_invalid(full_edoc: Edoc, priority: str) -> None:
    def change(root: etree._Element) -> None:
        first(root, "Priority").text = priority

    with pytest.raises(SchemaInvalid, match="Priority"):
        validate(mutated(full_edoc, change))


@pytest.mark.parametrize("element,value", [("SteeringType", "4"), ("BussinessDocType", "4")])
def test_enumerated_integers_out_of_range_are_schema_invalid(
    full_edoc: Edoc, element: str, value: str
) -> None:
    def change(root: etree._Element) -> None:
        first(root, element).text = value

    with pytest.raises(SchemaInvalid, match=element):
        validate(mutated(full_edoc, change))


def test_an_update_that_names_no_document_is_schema_invalid(full_edoc: Edoc) -> None:
    def change(root: etree._Element) -> None:
        first(root, "BussinessDocType").text = "2"

    with pytest.raises(SchemaInvalid, match="Bussiness/DocumentId"):
        validate(mutated(full_edoc, change))


def test_a_replacement_that_names_no_document_is_schema_invalid(full_edoc: Edoc) -> None:
    def change(root: etree._Element) -> None:
        first(root, "BussinessDocType").text = "3"

    with pytest.raises(SchemaInvalid, match="ReplacementInfo"):
        validate(mutated(full_edoc, change))


def test_a_revoke_naming_no_document_is_valid_it_revokes_its_own_document_id(
    full_edoc: Edoc,
) -> None:
    def change(root: etree._Element) -> None:
        first(root, "BussinessDocType").text = "1"

    assert validate(mutated(full_edoc, change)) == "edoc"


def test_an_element_outside_edxml_md_in_bussiness_is_schema_invalid(full_edoc: Edoc) -> None:
    def change(root: etree._Element) -> None:
        extra = etree.SubElement(first(root, "Bussiness"), q("ReplacementInfo"))
        extra.text = "000.00.00.G22,2026/11/01,1/VPCP-KSTT"

    with pytest.raises(SchemaInvalid, match="ReplacementInfo"):
        validate(mutated(full_edoc, change))


def test_a_replacement_built_with_the_api_validates() -> None:
    business = Business(BusinessDocType.REPLACE, "Thay thế", replacements=[Replacement(DOC_ID)])
    edoc = sample_edoc("000.00.00.G22", ["@provinces"], business=business)
    assert validate(to_element(edoc)) == "edoc"


@pytest.mark.parametrize("text", ["2026-11-20T08:00:00+07:00", "2026/11/20 08:00", "2026/11/20"])
def test_a_timestamp_not_yyyy_mm_dd_hh_mm_ss_is_schema_invalid(full_edoc: Edoc, text: str) -> None:
    def change(root: etree._Element) -> None:
        first(root, "Timestamp").text = text

    with pytest.raises(SchemaInvalid, match="Timestamp"):
        validate(mutated(full_edoc, change))


def test_an_element_in_the_wrong_namespace_is_schema_invalid(full_edoc: Edoc) -> None:
    def change(root: etree._Element) -> None:
        first(root, "Subject").tag = "{urn:other}Subject"

    with pytest.raises(SchemaInvalid, match="Subject"):
        validate(mutated(full_edoc, change))


def test_a_root_in_no_namespace_is_schema_invalid(full_edoc: Edoc) -> None:
    root = parse(
        to_bytes(full_edoc).replace(b' xmlns:edXML="' + NS.encode() + b'"', b' xmlns:edXML="urn:x"')
    )
    with pytest.raises(SchemaInvalid, match="unknown root"):
        validate(root)


def test_an_unknown_root_is_schema_invalid() -> None:
    with pytest.raises(SchemaInvalid, match="unknown root element edXML:MessageHeader"):
        validate(parse(f'<m:MessageHeader xmlns:m="{NS}"/>'.encode()))


def test_an_unexpected_extra_element_is_schema_invalid(full_edoc: Edoc) -> None:
    def change(root: etree._Element) -> None:
        etree.SubElement(first(root, "MessageHeader"), q("Extra")).text = "x"

    with pytest.raises(SchemaInvalid, match="Extra"):
        validate(mutated(full_edoc, change))


def test_an_attachment_missing_from_the_manifest_is_schema_invalid(full_edoc: Edoc) -> None:
    def change(root: etree._Element) -> None:
        reference = first(root, "Reference")
        reference.getparent().remove(reference)

    with pytest.raises(SchemaInvalid):
        validate(mutated(full_edoc, change))


def test_a_manifest_entry_without_its_attachment_is_schema_invalid(full_edoc: Edoc) -> None:
    def change(root: etree._Element) -> None:
        attachment = first(root, "Attachment")
        attachment.getparent().remove(attachment)

    with pytest.raises(SchemaInvalid):
        validate(mutated(full_edoc, change))


@pytest.mark.parametrize("name", ["../etc/passwd", "a\\b.pdf", "tab\tname.pdf"])
def test_an_attachment_name_with_a_path_or_control_character_is_schema_invalid(
    full_edoc: Edoc, name: str
) -> None:
    def change(root: etree._Element) -> None:
        for el in root.iter(q("AttachmentName")):
            el.text = name

    with pytest.raises(SchemaInvalid, match="AttachmentName"):
        validate(mutated(full_edoc, change))


def a_status(code: StatusCode = StatusCode.ACCEPTED) -> Status:
    return Status.about("000.00.00.H41", DOC_ID, code, NOW, addressee=G22)


def test_status_code_99_is_schema_invalid() -> None:
    root = to_element(a_status())
    first(root, "StatusCode").text = "99"
    with pytest.raises(SchemaInvalid, match="StatusCode"):
        validate(root)


def test_a_status_without_response_for_document_id_is_schema_invalid() -> None:
    root = to_element(a_status())
    reference = first(root, "ResponseFor")
    reference.remove(first(reference, "DocumentId"))
    with pytest.raises(SchemaInvalid, match="ResponseFor has no DocumentId"):
        validate(root)


def test_a_status_with_a_to_is_a_document_and_invalid_as_one() -> None:
    root = to_element(a_status())
    to = etree.SubElement(first(root, "MessageHeader"), q("To"))
    etree.SubElement(to, q("OrganId")).text = G22
    with pytest.raises(SchemaInvalid, match="StatusCode is not part of a document"):
        validate(root)


def test_a_signed_status_validates_and_a_second_signature_does_not() -> None:
    root = to_element(a_status())
    header(root).append(signature())
    assert validate(root) == "status"
    header(root).append(signature())
    with pytest.raises(SchemaInvalid):
        validate(root)
