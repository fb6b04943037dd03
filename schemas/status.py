"""The processing status (PROTOCOL section 3.2) as typed objects, to and from XML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lxml import etree

from axis.rejections import SchemaInvalid
from schemas._common import (
    EDXML_NS,
    EDXML_NSMAP,
    Fields,
    Writer,
    format_datetime,
    parse_datetime,
    root_of,
)
from schemas.ids import DocumentId
from schemas.validate import expect_kind
from schemas.xml import DEFAULT_MAX_BYTES

STATUS_TAG = f"{{{EDXML_NS}}}Status"

_w = Writer(EDXML_NS)


class StatusCode(StrEnum):
    """``StatusCode``: where the recipient is with a document."""

    ARRIVED = "01"
    REJECTED = "02"
    ACCEPTED = "03"
    AWAITING_ASSIGNMENT = "04"
    ASSIGNED = "05"
    COMPLETED = "06"
    RECALL_REQUESTED = "13"
    RECALL_AGREED = "15"
    RECALL_REFUSED = "16"


@dataclass(frozen=True)
class StaffInfo:
    """``StaffInfo``: who at the recipient handles the document."""

    department: str | None = None
    staff: str | None = None
    mobile: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Status:
    """A status that recipient ``sender`` reports on document ``document_id``.

    ``document_sender`` (``ResponseFor/OrganId``) is the agency that issued the
    document; left empty, it is taken from the DocumentId.
    """

    sender: str
    document_id: str
    code: StatusCode
    timestamp: datetime
    description: str | None = None
    staff: StaffInfo | None = None
    document_sender: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", StatusCode(self.code))
        if not self.document_sender:
            object.__setattr__(self, "document_sender", DocumentId.parse(self.document_id).organ_id)


def build_status(status: Status) -> etree._Element:
    """The unsigned ``Status`` element for ``status``."""
    root = etree.Element(STATUS_TAG, nsmap=EDXML_NSMAP)
    response_for = _w.sub(root, "ResponseFor")
    _w.sub(response_for, "OrganId", status.document_sender)
    _w.sub(response_for, "DocumentId", status.document_id)
    _w.sub(_w.sub(root, "From"), "OrganId", status.sender)
    _w.sub(root, "StatusCode", status.code.value)
    _w.opt(root, "Description", status.description)
    _w.sub(root, "Timestamp", format_datetime(status.timestamp))
    if status.staff is not None:
        staff = _w.sub(root, "StaffInfo")
        _w.opt(staff, "Department", status.staff.department)
        _w.opt(staff, "Staff", status.staff.staff)
        _w.opt(staff, "Mobile", status.staff.mobile)
        _w.opt(staff, "Email", status.staff.email)
    return root


def read_status(root: etree._Element) -> Status:
    """The :class:`Status` of a ``Status`` element (no schema check here)."""
    if root.tag != STATUS_TAG:
        raise SchemaInvalid(f"expected a Status root, found {root.tag!r}")
    top = Fields(root, EDXML_NS)
    response_for = Fields(top.child("ResponseFor"), EDXML_NS)
    staff_el = top.opt_child("StaffInfo")
    staff = None
    if staff_el is not None:
        f = Fields(staff_el, EDXML_NS)
        staff = StaffInfo(
            department=f.opt_text("Department"),
            staff=f.opt_text("Staff"),
            mobile=f.opt_text("Mobile"),
            email=f.opt_text("Email"),
        )
    return Status(
        sender=Fields(top.child("From"), EDXML_NS).text("OrganId"),
        document_id=response_for.text("DocumentId"),
        code=StatusCode(top.text("StatusCode")),
        timestamp=parse_datetime(top.text("Timestamp")),
        description=top.opt_text("Description"),
        staff=staff,
        document_sender=response_for.text("OrganId"),
    )


def parse_status(
    data: bytes | etree._Element,
    *,
    check_schema: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Status:
    """Parse a status from untrusted bytes (or a parsed root) into a :class:`Status`.

    Raises Malformed or TooLarge (from the parser) and SchemaInvalid.
    """
    root = root_of(data, max_bytes)
    if check_schema:
        expect_kind(root, "status")
    try:
        return read_status(root)
    except ValueError as exc:
        raise SchemaInvalid(str(exc)) from None
