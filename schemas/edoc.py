"""The edXML document (PROTOCOL section 3.1) as typed objects, to and from XML."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import IntEnum

from lxml import etree

from axis.rejections import SchemaInvalid
from schemas._common import (
    EDXML_NS,
    EDXML_NSMAP,
    Fields,
    Writer,
    format_date,
    format_datetime,
    parse_date,
    parse_datetime,
    parse_int,
    root_of,
)
from schemas.ids import DocumentId, make_document_id
from schemas.validate import expect_kind
from schemas.xml import DEFAULT_MAX_BYTES, text_of

EDOC_TAG = f"{{{EDXML_NS}}}edXML"

_w = Writer(EDXML_NS)
_WHITESPACE = re.compile(r"\s+")


class Priority(IntEnum):
    """``OtherInfo/Priority``."""

    NORMAL = 0
    URGENT = 1
    VERY_URGENT = 2
    FLASH = 3
    FLASH_AT_SET_TIME = 4


class SteeringType(IntEnum):
    """``SteeringType``: whether the document directs the recipients."""

    NOT_DIRECTIVE = 1
    DIRECTIVE = 2
    REPORT_ON_DIRECTIVE = 3


class BusinessDocType(IntEnum):
    """``Bussiness/BussinessDocType``: what the document does."""

    NEW = 0
    REVOKE = 1
    UPDATE = 2
    REPLACE = 3


@dataclass(frozen=True)
class Organization:
    """A sender (``From``) or recipient (``To``); a recipient may be a group (``@provinces``)."""

    organ_id: str
    name: str | None = None
    address: str | None = None
    email: str | None = None
    telephone: str | None = None
    fax: str | None = None
    website: str | None = None


@dataclass(frozen=True)
class SignerInfo:
    """``SignerInfo``: who signed the paper original."""

    full_name: str
    position: str | None = None
    competence: str | None = None


@dataclass(frozen=True)
class ResponseFor:
    """An earlier document this one answers."""

    organ_id: str
    code: str
    promulgation_date: date
    document_id: str

    @classmethod
    def from_document_id(cls, document_id: str) -> ResponseFor:
        """The reference to a document known only by its DocumentId (ValueError if malformed)."""
        parts = DocumentId.parse(document_id)
        return cls(parts.organ_id, parts.code, parts.date, document_id)

    @classmethod
    def of(cls, edoc: Edoc) -> ResponseFor:
        """The reference to ``edoc``."""
        return cls(edoc.sender.organ_id, edoc.code, edoc.promulgation_date, edoc.document_id)


@dataclass(frozen=True)
class TraceHeader:
    """One hop of ``TraceHeaderList``."""

    organ_id: str
    timestamp: datetime


@dataclass(frozen=True)
class Business:
    """``Bussiness``: a new document, or a revoke/update/replace of an earlier one.

    A revoke, update or replace names the original DocumentId in
    ``replacement_info``; a new document has none (ValueError otherwise).
    """

    doc_type: BusinessDocType = BusinessDocType.NEW
    reason: str | None = None
    replacement_info: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "doc_type", BusinessDocType(self.doc_type))
        if self.doc_type is BusinessDocType.NEW and self.replacement_info is not None:
            raise ValueError("a new document (BussinessDocType 0) has no ReplacementInfo")
        if self.doc_type is not BusinessDocType.NEW and not self.replacement_info:
            raise ValueError(
                f"a {self.doc_type.name.lower()} (BussinessDocType {self.doc_type.value}) "
                "must name the original DocumentId in ReplacementInfo"
            )


@dataclass(frozen=True)
class Reference:
    """A manifest entry (``edXMLManifest/Reference``): an attachment without its content."""

    content_id: str
    content_type: str
    name: str


@dataclass(frozen=True)
class Attachment:
    """An attached file, its bytes carried base64-encoded in ``AttachmentEncoded``."""

    content_id: str
    content_type: str
    name: str
    data: bytes = field(repr=False)

    @property
    def reference(self) -> Reference:
        """Its manifest entry."""
        return Reference(self.content_id, self.content_type, self.name)


@dataclass(frozen=True)
class Edoc:
    """An edXML document.

    ``document_id`` is derived from the sender, date, number and notation when left
    empty. ``manifest`` is derived from ``attachments`` when left empty; a header-only
    parse (``with_attachments=False``) has no attachments but still its manifest, and
    cannot be serialized again.
    Sequence fields accept lists and are stored as tuples.
    """

    sender: Organization
    recipients: tuple[Organization, ...]
    number: str
    notation: str
    promulgation_date: date
    subject: str
    document_type: int = 1
    type_name: str | None = None
    place: str | None = None
    content: str | None = None
    signer: SignerInfo | None = None
    due_date: date | None = None
    to_places: tuple[str, ...] = ()
    steering_type: SteeringType = SteeringType.NOT_DIRECTIVE
    priority: Priority = Priority.NORMAL
    sphere_of_promulgation: str | None = None
    typer_notation: str | None = None
    promulgation_amount: int | None = None
    page_amount: int | None = None
    direction: bool | None = None
    response_for: tuple[ResponseFor, ...] = ()
    trace: tuple[TraceHeader, ...] = ()
    business: Business = field(default_factory=Business)
    attachments: tuple[Attachment, ...] = ()
    manifest: tuple[Reference, ...] = ()
    document_id: str = ""

    def __post_init__(self) -> None:
        for name in ("recipients", "to_places", "response_for", "trace", "attachments", "manifest"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "number", str(self.number))
        object.__setattr__(self, "steering_type", SteeringType(self.steering_type))
        object.__setattr__(self, "priority", Priority(self.priority))
        if not self.document_id:
            object.__setattr__(
                self,
                "document_id",
                make_document_id(
                    self.sender.organ_id, self.promulgation_date, self.number, self.notation
                ),
            )
        derived = tuple(a.reference for a in self.attachments)
        if not self.manifest:
            object.__setattr__(self, "manifest", derived)
        elif self.attachments and self.manifest != derived:
            raise ValueError("manifest does not match the attachments")

    @property
    def code(self) -> str:
        """``number/notation``, e.g. ``101/VPCP-KSTT``."""
        return f"{self.number}/{self.notation}"

    @property
    def recipient_ids(self) -> tuple[str, ...]:
        """Every ``To/OrganId``, groups included, in document order."""
        return tuple(r.organ_id for r in self.recipients)


def _organization(parent: etree._Element, name: str, org: Organization) -> None:
    el = _w.sub(parent, name)
    _w.sub(el, "OrganId", org.organ_id)
    _w.opt(el, "OrganName", org.name)
    _w.opt(el, "OrganAdd", org.address)
    _w.opt(el, "Email", org.email)
    _w.opt(el, "Telephone", org.telephone)
    _w.opt(el, "Fax", org.fax)
    _w.opt(el, "Website", org.website)


def build_edoc(edoc: Edoc) -> etree._Element:
    """The unsigned ``edXML`` element for ``edoc``."""
    if edoc.manifest and not edoc.attachments:
        raise ValueError("this Edoc was parsed without attachments and cannot be serialized")
    root = etree.Element(EDOC_TAG, nsmap=EDXML_NSMAP)
    envelope = _w.sub(root, "edXMLEnvelope")
    header = _w.sub(envelope, "edXMLHeader")
    mh = _w.sub(header, "MessageHeader")
    _organization(mh, "From", edoc.sender)
    for recipient in edoc.recipients:
        _organization(mh, "To", recipient)
    _w.sub(mh, "DocumentId", edoc.document_id)
    code = _w.sub(mh, "Code")
    _w.sub(code, "CodeNumber", edoc.number)
    _w.sub(code, "CodeNotation", edoc.notation)
    promulgation = _w.sub(mh, "PromulgationInfo")
    _w.opt(promulgation, "Place", edoc.place)
    _w.sub(promulgation, "PromulgationDate", format_date(edoc.promulgation_date))
    doc_type = _w.sub(mh, "DocumentType")
    _w.sub(doc_type, "Type", str(edoc.document_type))
    _w.opt(doc_type, "TypeName", edoc.type_name)
    _w.sub(mh, "Subject", edoc.subject)
    _w.opt(mh, "Content", edoc.content)
    if edoc.signer is not None:
        signer = _w.sub(mh, "SignerInfo")
        _w.opt(signer, "Competence", edoc.signer.competence)
        _w.opt(signer, "Position", edoc.signer.position)
        _w.sub(signer, "FullName", edoc.signer.full_name)
    if edoc.due_date is not None:
        _w.sub(mh, "DueDate", format_date(edoc.due_date))
    if edoc.to_places:
        places = _w.sub(mh, "ToPlaces")
        for place in edoc.to_places:
            _w.sub(places, "Place", place)
    _w.sub(mh, "SteeringType", str(int(edoc.steering_type)))
    other = _w.sub(mh, "OtherInfo")
    _w.sub(other, "Priority", str(int(edoc.priority)))
    _w.opt(other, "SphereOfPromulgation", edoc.sphere_of_promulgation)
    _w.opt(other, "TyperNotation", edoc.typer_notation)
    if edoc.promulgation_amount is not None:
        _w.sub(other, "PromulgationAmount", str(edoc.promulgation_amount))
    if edoc.page_amount is not None:
        _w.sub(other, "PageAmount", str(edoc.page_amount))
    if edoc.direction is not None:
        _w.sub(other, "Direction", "true" if edoc.direction else "false")
    for ref in edoc.response_for:
        rf = _w.sub(mh, "ResponseFor")
        _w.sub(rf, "OrganId", ref.organ_id)
        _w.sub(rf, "Code", ref.code)
        _w.sub(rf, "PromulgationDate", format_date(ref.promulgation_date))
        _w.sub(rf, "DocumentId", ref.document_id)

    trace = _w.sub(header, "TraceHeaderList")
    for hop in edoc.trace:
        th = _w.sub(trace, "TraceHeader")
        _w.sub(th, "OrganId", hop.organ_id)
        _w.sub(th, "Timestamp", format_datetime(hop.timestamp))
    business = _w.sub(trace, "Bussiness")
    _w.sub(business, "BussinessDocType", str(int(edoc.business.doc_type)))
    _w.opt(business, "BussinessDocReason", edoc.business.reason)
    _w.opt(business, "ReplacementInfo", edoc.business.replacement_info)

    manifest = _w.sub(_w.sub(envelope, "edXMLBody"), "edXMLManifest")
    for attachment in edoc.attachments:
        ref_el = _w.sub(manifest, "Reference")
        _w.sub(ref_el, "ContentId", attachment.content_id)
        _w.sub(ref_el, "ContentType", attachment.content_type)
        _w.sub(ref_el, "AttachmentName", attachment.name)
    if edoc.attachments:
        encoded = _w.sub(root, "AttachmentEncoded")
        for attachment in edoc.attachments:
            att = _w.sub(encoded, "Attachment")
            _w.sub(att, "ContentId", attachment.content_id)
            _w.sub(att, "ContentTransferEncoded", "base64")
            _w.sub(att, "AttachmentName", attachment.name)
            _w.sub(att, "Value", base64.b64encode(attachment.data).decode("ascii"))
    return root


def _f(element: etree._Element) -> Fields:
    return Fields(element, EDXML_NS)


def _read_organization(element: etree._Element) -> Organization:
    f = _f(element)
    return Organization(
        organ_id=f.text("OrganId"),
        name=f.opt_text("OrganName"),
        address=f.opt_text("OrganAdd"),
        email=f.opt_text("Email"),
        telephone=f.opt_text("Telephone"),
        fax=f.opt_text("Fax"),
        website=f.opt_text("Website"),
    )


def _opt_int(fields: Fields, name: str) -> int | None:
    text = fields.opt_text(name)
    return None if text is None else parse_int(text, name)


def _opt_date(fields: Fields, name: str) -> date | None:
    text = fields.opt_text(name)
    return None if text is None else parse_date(text)


def _read_boolean(text: str | None) -> bool | None:
    if text is None:
        return None
    value = text.strip()
    if value not in ("true", "false", "1", "0"):
        raise SchemaInvalid(f"{text!r} is not a boolean")
    return value in ("true", "1")


def _decode(text: str, content_id: str) -> bytes:
    try:
        return base64.b64decode(_WHITESPACE.sub("", text), validate=True)
    except (binascii.Error, ValueError):
        raise SchemaInvalid(f"attachment {content_id!r} is not valid base64") from None


def _read_attachments(
    root_fields: Fields, manifest: tuple[Reference, ...]
) -> tuple[Attachment, ...]:
    by_id = {ref.content_id: ref for ref in manifest}
    attachments = []
    encoded = root_fields.opt_child("AttachmentEncoded")
    for element in [] if encoded is None else _f(encoded).children("Attachment"):
        att = _f(element)
        content_id = att.text("ContentId")
        name = att.text("AttachmentName")
        ref = by_id.get(content_id)
        if ref is None:
            raise SchemaInvalid(f"attachment {content_id!r} is not in the manifest")
        if ref.name != name:
            raise SchemaInvalid(f"attachment {content_id!r} is named differently in the manifest")
        data = _decode(att.text("Value"), content_id)
        attachments.append(Attachment(content_id, ref.content_type, name, data))
    if len(attachments) != len(manifest):
        raise SchemaInvalid("the manifest and the attachments do not correspond")
    return tuple(attachments)


def _read_signer(element: etree._Element | None) -> SignerInfo | None:
    if element is None:
        return None
    f = _f(element)
    return SignerInfo(
        full_name=f.text("FullName"),
        position=f.opt_text("Position"),
        competence=f.opt_text("Competence"),
    )


def _read_response_for(element: etree._Element) -> ResponseFor:
    f = _f(element)
    return ResponseFor(
        organ_id=f.text("OrganId"),
        code=f.text("Code"),
        promulgation_date=parse_date(f.text("PromulgationDate")),
        document_id=f.text("DocumentId"),
    )


def _read_trace_header(element: etree._Element) -> TraceHeader:
    f = _f(element)
    return TraceHeader(f.text("OrganId"), parse_datetime(f.text("Timestamp")))


def _read_business(element: etree._Element) -> Business:
    f = _f(element)
    return Business(
        doc_type=BusinessDocType(parse_int(f.text("BussinessDocType"), "BussinessDocType")),
        reason=f.opt_text("BussinessDocReason"),
        replacement_info=f.opt_text("ReplacementInfo"),
    )


def _read_reference(element: etree._Element) -> Reference:
    f = _f(element)
    return Reference(f.text("ContentId"), f.text("ContentType"), f.text("AttachmentName"))


def read_edoc(root: etree._Element, *, with_attachments: bool = True) -> Edoc:
    """The :class:`Edoc` of an ``edXML`` element (no schema check here)."""
    if root.tag != EDOC_TAG:
        raise SchemaInvalid(f"expected an edXML root, found {root.tag!r}")
    top = _f(root)
    envelope = _f(top.child("edXMLEnvelope"))
    header = _f(envelope.child("edXMLHeader"))
    mh = _f(header.child("MessageHeader"))
    code = _f(mh.child("Code"))
    promulgation = _f(mh.child("PromulgationInfo"))
    doc_type = _f(mh.child("DocumentType"))
    other = _f(mh.child("OtherInfo"))
    trace = _f(header.child("TraceHeaderList"))
    places = mh.opt_child("ToPlaces")
    manifest_el = _f(_f(envelope.child("edXMLBody")).child("edXMLManifest"))
    manifest = tuple(_read_reference(ref) for ref in manifest_el.children("Reference"))

    return Edoc(
        sender=_read_organization(mh.child("From")),
        recipients=tuple(_read_organization(to) for to in mh.children("To")),
        number=code.text("CodeNumber"),
        notation=code.text("CodeNotation"),
        promulgation_date=parse_date(promulgation.text("PromulgationDate")),
        subject=mh.text("Subject"),
        document_type=parse_int(doc_type.text("Type"), "Type"),
        type_name=doc_type.opt_text("TypeName"),
        place=promulgation.opt_text("Place"),
        content=mh.opt_text("Content"),
        signer=_read_signer(mh.opt_child("SignerInfo")),
        due_date=_opt_date(mh, "DueDate"),
        to_places=()
        if places is None
        else tuple(text_of(p) or "" for p in _f(places).children("Place")),
        steering_type=SteeringType(parse_int(mh.text("SteeringType"), "SteeringType")),
        priority=Priority(parse_int(other.text("Priority"), "Priority")),
        sphere_of_promulgation=other.opt_text("SphereOfPromulgation"),
        typer_notation=other.opt_text("TyperNotation"),
        promulgation_amount=_opt_int(other, "PromulgationAmount"),
        page_amount=_opt_int(other, "PageAmount"),
        direction=_read_boolean(other.opt_text("Direction")),
        response_for=tuple(_read_response_for(rf) for rf in mh.children("ResponseFor")),
        trace=tuple(_read_trace_header(th) for th in trace.children("TraceHeader")),
        business=_read_business(trace.child("Bussiness")),
        attachments=_read_attachments(top, manifest) if with_attachments else (),
        manifest=manifest,
        document_id=mh.text("DocumentId"),
    )


def parse_edoc(
    data: bytes | etree._Element,
    *,
    with_attachments: bool = True,
    check_schema: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Edoc:
    """Parse an edXML document from untrusted bytes (or a parsed root) into an :class:`Edoc`.

    ``with_attachments=False`` reads the header and manifest only and decodes no
    attachment. ``check_schema=False`` skips the XSD for a root the caller has just
    passed through :func:`schemas.validate`.
    Raises Malformed or TooLarge (from the parser) and SchemaInvalid.
    """
    root = root_of(data, max_bytes)
    if check_schema:
        expect_kind(root, "edoc")
    try:
        return read_edoc(root, with_attachments=with_attachments)
    except ValueError as exc:
        raise SchemaInvalid(str(exc)) from None
