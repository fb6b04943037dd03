"""The processing status (EDXML.md section 2) as typed objects, to and from XML.

A status is an ``edXML`` envelope whose MessageHeader holds From, ResponseFor,
StaffInfo, StatusCode, Description and Timestamp, in any order; no To, no
TraceHeaderList, no body. ``ResponseFor/OrganId`` is the agency the status is
addressed to and ``ResponseFor/DocumentId`` the document it is about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from lxml import etree

from axis.rejections import SchemaInvalid
from schemas._common import (
    EDXML_NS,
    EDXML_NSMAP,
    Writer,
    format_timestamp,
    parse_timestamp,
    root_of,
)
from schemas.edoc import (
    EDOC_TAG,
    Organization,
    ResponseFor,
    StaffInfo,
    message_header,
    read_organization,
    read_response_for,
    read_staff,
    write_organization,
    write_response_for,
    write_staff,
)
from schemas.validate import expect_kind
from schemas.xml import DEFAULT_MAX_BYTES

_w = Writer(EDXML_NS)


class StatusCode(StrEnum):
    """``StatusCode``: where the recipient is with a document (EDXML.md 2)."""

    ARRIVED = "01"
    REFUSED = "02"
    ACCEPTED = "03"
    AWAITING_ASSIGNMENT = "04"
    BEING_PROCESSED = "05"
    COMPLETED = "06"
    RECALL_REQUESTED = "13"
    RECALL_AGREED = "15"
    RECALL_REFUSED = "16"

    @property
    def from_sender(self) -> bool:
        """Whether the document's sender sends this code (13) rather than a recipient."""
        return self is StatusCode.RECALL_REQUESTED


@dataclass(frozen=True)
class Status:
    """A status ``sender`` sends about the document ``response_for`` names.

    For codes 01–06, 15 and 16 the sender is a recipient of the document and
    ``response_for.organ_id`` its sender; for 13 it is the other way round.
    """

    sender: Organization
    response_for: ResponseFor
    code: StatusCode
    timestamp: datetime
    description: str | None = None
    staff: StaffInfo | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", StatusCode(self.code))
        # The wire carries whole seconds (yyyy/MM/dd HH:mm:ss).
        object.__setattr__(self, "timestamp", self.timestamp.replace(microsecond=0))
        if isinstance(self.sender, str):
            object.__setattr__(self, "sender", Organization(self.sender))
        if not self.response_for.organ_id or not self.response_for.document_id:
            raise ValueError("a status names its addressee and document in ResponseFor")

    @classmethod
    def about(
        cls,
        sender: str | Organization,
        document_id: str,
        code: StatusCode | str,
        timestamp: datetime,
        *,
        addressee: str,
        description: str | None = None,
        staff: StaffInfo | None = None,
        response_for: ResponseFor | None = None,
    ) -> Status:
        """A status on ``document_id`` addressed to ``addressee`` (ResponseFor built from them).

        ``response_for`` gives the full reference (Code, PromulgationDate) when the
        caller has the document; its OrganId is replaced by ``addressee``.
        """
        if response_for is None:
            try:
                response_for = ResponseFor.from_document_id(document_id, addressee)
            except ValueError:
                response_for = ResponseFor(addressee, None, None, document_id)
        ref = ResponseFor(addressee, response_for.code, response_for.promulgation_date, document_id)
        org = sender if isinstance(sender, Organization) else Organization(sender)
        return cls(org, ref, StatusCode(code), timestamp, description, staff)

    @property
    def sender_id(self) -> str:
        """``From/OrganId``."""
        return self.sender.organ_id

    @property
    def document_id(self) -> str:
        """The DocumentId the status is about."""
        return self.response_for.document_id or ""

    @property
    def addressee(self) -> str:
        """``ResponseFor/OrganId``: the agency the status goes to."""
        return self.response_for.organ_id or ""

    @property
    def document_sender(self) -> str:
        """Who sent the document: the addressee, or for a 13 the status's own sender."""
        return self.sender_id if self.code.from_sender else self.addressee


def build_status(status: Status) -> etree._Element:
    """The unsigned ``edXML`` envelope of ``status``."""
    root = etree.Element(EDOC_TAG, nsmap=EDXML_NSMAP)
    header = _w.sub(_w.sub(root, "edXMLEnvelope"), "edXMLHeader")
    mh = _w.sub(header, "MessageHeader")
    write_organization(mh, "From", status.sender)
    write_response_for(mh, status.response_for)
    if status.staff is not None:
        write_staff(mh, status.staff)
    _w.sub(mh, "StatusCode", status.code.value)
    _w.opt(mh, "Description", status.description)
    _w.sub(mh, "Timestamp", format_timestamp(status.timestamp))
    return root


def read_status(root: etree._Element) -> Status:
    """The :class:`Status` of an ``edXML`` status envelope (no schema check here)."""
    mh = message_header(root)
    if mh.opt_child("StatusCode") is None:
        raise SchemaInvalid("the envelope is a document, not a status (it has no StatusCode)")
    return Status(
        sender=read_organization(mh.child("From")),
        response_for=read_response_for(mh.child("ResponseFor")),
        code=StatusCode(mh.text("StatusCode").strip()),
        timestamp=parse_timestamp(mh.text("Timestamp")),
        description=mh.opt_text("Description"),
        staff=read_staff(mh.opt_child("StaffInfo")),
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
