"""The edXML document (EDXML.md section 1) as typed objects, to and from XML.

Reading goes by namespace URI, never by prefix, and takes the children of
MessageHeader, From/To, ResponseFor and TraceHeaderList in whatever order the
sender wrote them. Writing produces the national SDK's order (DocumentId right
after the last To; ``DueDate, OtherInfo, ResponseFor, SteeringType, ToPlaces``),
with the ``edXML:`` prefix declared on the root.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
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
    format_timestamp,
    parse_date,
    parse_int,
    parse_timestamp,
    root_of,
)
from schemas.ids import DocumentId, make_document_id
from schemas.validate import expect_kind
from schemas.xml import DEFAULT_MAX_BYTES, text_of

EDOC_TAG = f"{{{EDXML_NS}}}edXML"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

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
    organization_in_charge: str | None = None


@dataclass(frozen=True)
class SignerInfo:
    """``SignerInfo``: who signed the paper original."""

    full_name: str | None = None
    position: str | None = None
    competence: str | None = None


@dataclass(frozen=True)
class StaffInfo:
    """``StaffInfo``: who at an agency handles the document or wrote the status."""

    department: str | None = None
    staff: str | None = None
    mobile: str | None = None
    email: str | None = None
    department_id: str | None = None
    staff_id: str | None = None


@dataclass(frozen=True)
class ResponseFor:
    """An earlier document this one answers (or a status is about); all empty is allowed."""

    organ_id: str | None = None
    code: str | None = None
    promulgation_date: date | None = None
    document_id: str | None = None

    @classmethod
    def from_document_id(cls, document_id: str, organ_id: str | None = None) -> ResponseFor:
        """The reference to a document known by its DocumentId (and its sender, when opaque)."""
        parts = DocumentId.read(document_id)
        if parts is None:
            if organ_id is None:
                raise ValueError(f"{document_id!r} is opaque: name the document's sender")
            return cls(organ_id, None, None, document_id)
        return cls(organ_id or parts.organ_id, parts.code, parts.date, document_id)

    @classmethod
    def of(cls, edoc: Edoc) -> ResponseFor:
        """The reference to ``edoc``."""
        return cls(edoc.sender.organ_id, edoc.code, edoc.promulgation_date, edoc.document_id)

    @property
    def is_empty(self) -> bool:
        """The empty ``<ResponseFor/>`` some senders write."""
        return self == ResponseFor()


@dataclass(frozen=True)
class TraceHeader:
    """One hop of ``TraceHeaderList``."""

    organ_id: str
    timestamp: datetime

    def __post_init__(self) -> None:
        # The wire carries whole seconds (yyyy/MM/dd HH:mm:ss).
        object.__setattr__(self, "timestamp", self.timestamp.replace(microsecond=0))


@dataclass(frozen=True)
class Receiver:
    """``ReceiverList/Receiver`` of an update."""

    organ_id: str
    receiver_type: int | None = None


@dataclass(frozen=True)
class UpdateInfo:
    """``BussinessDocumentInfo``: what an update changes."""

    document_info: bool | None = None
    """Whether the metadata changed."""
    document_receiver: bool | None = None
    """Whether the recipients changed; then ``receivers`` are the new ones."""
    receivers: tuple[Receiver, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "receivers", tuple(self.receivers))


@dataclass(frozen=True)
class Replacement:
    """``ReplacementInfo``: a document replaced, for the recipients in ``organ_ids``."""

    document_id: str
    organ_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "organ_ids", tuple(self.organ_ids))


@dataclass(frozen=True)
class Business:
    """``Bussiness``: a new document, or a revoke, update or replacement of earlier ones.

    ``document_id`` is ``Bussiness/DocumentId``: what a revoke or an update acts on.
    A revoke without one acts on the message's own DocumentId (the national SDK's
    revoke repeats the original's header); for a new document it targets nothing
    (the SDK's builder fills it with an unrelated id). An update must name its
    target; a replacement names its targets in ``replacements`` (ValueError otherwise).
    """

    doc_type: BusinessDocType = BusinessDocType.NEW
    reason: str | None = None
    document_id: str | None = None
    paper: bool | None = None
    update: UpdateInfo | None = None
    replacements: tuple[Replacement, ...] = ()
    staff: StaffInfo | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "doc_type", BusinessDocType(self.doc_type))
        object.__setattr__(self, "replacements", tuple(self.replacements))
        if self.doc_type is BusinessDocType.UPDATE and not self.document_id:
            raise ValueError("an update (BussinessDocType 2) names its target in DocumentId")
        if self.doc_type is BusinessDocType.REPLACE and not self.replacements:
            raise ValueError("a replacement (BussinessDocType 3) names what it replaces")

    def targets(self, own_document_id: str) -> tuple[str, ...]:
        """The DocumentIds this message acts on (EDXML.md 1.2); none for a new document."""
        return action_targets(
            self.doc_type,
            own_document_id,
            self.document_id,
            [r.document_id for r in self.replacements],
        )


def action_targets(
    doc_type: int, own_document_id: str, business_document_id: str | None, replaced: Sequence[str]
) -> tuple[str, ...]:
    """Which documents a message acts on (EDXML.md 1.2), from its ``BussinessDocType``.

    A revoke acts on ``Bussiness/DocumentId``, or without one on its own DocumentId
    (the national SDK's revoke repeats the original's header); an update on
    ``Bussiness/DocumentId``; a replacement on each ``ReplacementInfo/DocumentId``; a
    new document on nothing, whatever its ``Bussiness/DocumentId`` says.
    """
    if doc_type == BusinessDocType.REVOKE:
        return (business_document_id or own_document_id,)
    if doc_type == BusinessDocType.UPDATE:
        return (business_document_id or "",)
    if doc_type == BusinessDocType.REPLACE:
        return tuple(replaced)
    return ()


@dataclass(frozen=True)
class Reference:
    """A manifest entry (``edXMLManifest/Reference``): an attachment without its content."""

    content_id: str
    content_type: str
    name: str
    description: str | None = None
    href: str | None = None


@dataclass(frozen=True)
class Attachment:
    """An attached file: ``data`` is what ``ContentTransferEncoded`` carries (base64).

    The national SDK carries a ZIP of the file (``content_type`` application/zip,
    ``name`` the original file name); :mod:`schemas.files` looks inside.
    """

    content_id: str
    content_type: str
    name: str
    data: bytes = field(repr=False)
    description: str | None = None

    @property
    def reference(self) -> Reference:
        """Its manifest entry."""
        return Reference(self.content_id, self.content_type, self.name, self.description)


@dataclass(frozen=True)
class Edoc:
    """An edXML document.

    ``document_id`` is derived from the sender, date, number and notation when left
    empty. ``manifest`` is derived from ``attachments`` when left empty; a header-only
    parse (``with_attachments=False``) has no attachments but still its manifest, and
    cannot be serialized again. Sequence fields accept lists and are stored as tuples.
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
    type_detail: str | None = None
    appendixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "recipients",
            "to_places",
            "response_for",
            "trace",
            "attachments",
            "manifest",
            "appendixes",
        ):
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
        elif self.attachments and _by_content_id(self.manifest) != _by_content_id(derived):
            raise ValueError("manifest does not match the attachments")

    @property
    def code(self) -> str:
        """``number/notation``, e.g. ``7816/VPCP-TTĐT``."""
        return f"{self.number}/{self.notation}"

    @property
    def recipient_ids(self) -> tuple[str, ...]:
        """Every ``To/OrganId``, groups included, in document order."""
        return tuple(r.organ_id for r in self.recipients)

    @property
    def targets(self) -> tuple[str, ...]:
        """The DocumentIds a revoke, update or replacement acts on."""
        return self.business.targets(self.document_id)


def _by_content_id(refs: tuple[Reference, ...]) -> dict[str, tuple[str, str]]:
    # The manifest may describe a file its attachment does not (href, description).
    return {r.content_id: (r.content_type, r.name) for r in refs}


def write_organization(parent: etree._Element, name: str, org: Organization) -> None:
    """Append ``From`` or ``To`` for ``org``, in the order the national SDK writes."""
    el = _w.sub(parent, name)
    _w.sub(el, "OrganId", org.organ_id)
    _w.opt(el, "OrganizationInCharge", org.organization_in_charge)
    _w.opt(el, "OrganName", org.name)
    _w.opt(el, "OrganAdd", org.address)
    _w.opt(el, "Email", org.email)
    _w.opt(el, "Telephone", org.telephone)
    _w.opt(el, "Fax", org.fax)
    _w.opt(el, "Website", org.website)


def write_response_for(parent: etree._Element, ref: ResponseFor) -> None:
    """Append a ``ResponseFor`` (empty when every field is)."""
    rf = _w.sub(parent, "ResponseFor")
    _w.opt(rf, "OrganId", ref.organ_id)
    _w.opt(rf, "Code", ref.code)
    if ref.promulgation_date is not None:
        _w.sub(rf, "PromulgationDate", format_date(ref.promulgation_date))
    _w.opt(rf, "DocumentId", ref.document_id)


def write_staff(parent: etree._Element, staff: StaffInfo) -> None:
    """Append a ``StaffInfo``."""
    el = _w.sub(parent, "StaffInfo")
    _w.opt(el, "Department", staff.department)
    _w.opt(el, "DepartmentId", staff.department_id)
    _w.opt(el, "Staff", staff.staff)
    _w.opt(el, "StaffId", staff.staff_id)
    _w.opt(el, "Email", staff.email)
    _w.opt(el, "Mobile", staff.mobile)


def _bit(value: bool | None) -> str | None:
    return None if value is None else ("1" if value else "0")


def _business(trace: etree._Element, business: Business) -> None:
    el = _w.sub(trace, "Bussiness")
    _w.opt(el, "DocumentId", business.document_id)
    _w.sub(el, "BussinessDocType", str(int(business.doc_type)))
    _w.opt(el, "BussinessDocReason", business.reason)
    _w.opt(el, "Paper", _bit(business.paper))
    if business.update is not None:
        info = _w.sub(el, "BussinessDocumentInfo")
        _w.opt(info, "DocumentInfo", _bit(business.update.document_info))
        _w.opt(info, "DocumentReceiver", _bit(business.update.document_receiver))
        if business.update.receivers:
            receivers = _w.sub(info, "ReceiverList")
            for receiver in business.update.receivers:
                r = _w.sub(receivers, "Receiver")
                _w.sub(r, "OrganId", receiver.organ_id)
                if receiver.receiver_type is not None:
                    _w.sub(r, "ReceiverType", str(receiver.receiver_type))
    if business.replacements:
        replacements = _w.sub(el, "ReplacementInfoList")
        for replacement in business.replacements:
            info = _w.sub(replacements, "ReplacementInfo")
            _w.sub(info, "DocumentId", replacement.document_id)
            organs = _w.sub(info, "OrganIdList")
            for organ in replacement.organ_ids:
                _w.sub(organs, "OrganId", organ)
    if business.staff is not None:
        write_staff(el, business.staff)


def build_edoc(edoc: Edoc) -> etree._Element:
    """The unsigned ``edXML`` element for ``edoc``."""
    if edoc.manifest and not edoc.attachments:
        raise ValueError("this Edoc was parsed without attachments and cannot be serialized")
    root = etree.Element(EDOC_TAG, nsmap=EDXML_NSMAP)
    envelope = _w.sub(root, "edXMLEnvelope")
    header = _w.sub(envelope, "edXMLHeader")
    mh = _w.sub(header, "MessageHeader")
    write_organization(mh, "From", edoc.sender)
    for recipient in edoc.recipients:
        write_organization(mh, "To", recipient)
    _w.sub(mh, "DocumentId", edoc.document_id)
    code = _w.sub(mh, "Code")
    _w.sub(code, "CodeNumber", edoc.number)
    _w.sub(code, "CodeNotation", edoc.notation)
    promulgation = _w.sub(mh, "PromulgationInfo")
    _w.opt(promulgation, "Place", edoc.place)
    _w.sub(promulgation, "PromulgationDate", format_date(edoc.promulgation_date))
    doc_type = _w.sub(mh, "DocumentType")
    _w.sub(doc_type, "Type", str(edoc.document_type))
    _w.opt(doc_type, "TypeDetail", edoc.type_detail)
    _w.opt(doc_type, "TypeName", edoc.type_name)
    _w.sub(mh, "Subject", edoc.subject)
    _w.opt(mh, "Content", edoc.content)
    if edoc.signer is not None:
        signer = _w.sub(mh, "SignerInfo")
        _w.opt(signer, "Competence", edoc.signer.competence)
        _w.opt(signer, "Position", edoc.signer.position)
        _w.opt(signer, "FullName", edoc.signer.full_name)
    if edoc.due_date is not None:
        _w.sub(mh, "DueDate", format_date(edoc.due_date))
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
    if edoc.appendixes:
        appendixes = _w.sub(other, "Appendixes")
        for appendix in edoc.appendixes:
            _w.sub(appendixes, "Appendix", appendix)
    for reply in edoc.response_for:
        write_response_for(mh, reply)
    _w.sub(mh, "SteeringType", str(int(edoc.steering_type)))
    if edoc.to_places:
        places = _w.sub(mh, "ToPlaces")
        for place in edoc.to_places:
            _w.sub(places, "Place", place)

    trace = _w.sub(header, "TraceHeaderList")
    for hop in edoc.trace:
        th = _w.sub(trace, "TraceHeader")
        _w.sub(th, "OrganId", hop.organ_id)
        _w.sub(th, "Timestamp", format_timestamp(hop.timestamp))
    _business(trace, edoc.business)

    manifest = _w.sub(_w.sub(envelope, "edXMLBody"), "edXMLManifest")
    for ref in edoc.manifest:
        ref_el = _w.sub(manifest, "Reference")
        if ref.href is not None:
            ref_el.set(XLINK_HREF, ref.href)
        _w.sub(ref_el, "ContentId", ref.content_id)
        _w.sub(ref_el, "ContentType", ref.content_type)
        _w.opt(ref_el, "Description", ref.description)
        _w.sub(ref_el, "AttachmentName", ref.name)
    if edoc.attachments:
        encoded = _w.sub(root, "AttachmentEncoded")
        for attachment in edoc.attachments:
            att = _w.sub(encoded, "Attachment")
            _w.sub(att, "ContentId", attachment.content_id)
            _w.sub(att, "AttachmentName", attachment.name)
            _w.opt(att, "Description", attachment.description)
            _w.sub(att, "ContentType", attachment.content_type)
            _w.sub(
                att,
                "ContentTransferEncoded",
                base64.b64encode(attachment.data).decode("ascii"),
            )
    return root


def _f(element: etree._Element) -> Fields:
    return Fields(element, EDXML_NS)


def read_organization(element: etree._Element) -> Organization:
    """The :class:`Organization` of a ``From`` or ``To``."""
    f = _f(element)
    return Organization(
        organ_id=f.text("OrganId").strip(),
        name=f.opt_text("OrganName"),
        address=f.opt_text("OrganAdd"),
        email=f.opt_text("Email"),
        telephone=f.opt_text("Telephone"),
        fax=f.opt_text("Fax"),
        website=f.opt_text("Website"),
        organization_in_charge=f.opt_text("OrganizationInCharge"),
    )


def _token(fields: Fields, name: str) -> str | None:
    text = fields.opt_text(name)
    return None if text is None else text.strip()


def _opt_int(fields: Fields, name: str) -> int | None:
    text = fields.opt_text(name)
    return None if text is None else parse_int(text, name)


def _opt_date(fields: Fields, name: str) -> date | None:
    text = fields.opt_text(name)
    return None if text is None else parse_date(text)


def _opt_bit(fields: Fields, name: str) -> bool | None:
    text = _token(fields, name)
    if text is None:
        return None
    if text not in ("true", "false", "1", "0"):
        raise SchemaInvalid(f"{name} {text!r} is not a boolean")
    return text in ("true", "1")


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
        content_id = att.text("ContentId").strip()
        name = att.text("AttachmentName")
        if content_id not in by_id:
            raise SchemaInvalid(f"attachment {content_id!r} is not in the manifest")
        data = _decode(att.text("ContentTransferEncoded"), content_id)
        attachments.append(
            Attachment(
                content_id,
                att.text("ContentType").strip(),
                name,
                data,
                att.opt_text("Description"),
            )
        )
    if len(attachments) != len(manifest):
        raise SchemaInvalid("the manifest and the attachments do not correspond")
    return tuple(attachments)


def _read_signer(element: etree._Element | None) -> SignerInfo | None:
    if element is None:
        return None
    f = _f(element)
    return SignerInfo(
        full_name=f.opt_text("FullName"),
        position=f.opt_text("Position"),
        competence=f.opt_text("Competence"),
    )


def read_staff(element: etree._Element | None) -> StaffInfo | None:
    """The :class:`StaffInfo` of a ``StaffInfo`` element, if there is one."""
    if element is None:
        return None
    f = _f(element)
    return StaffInfo(
        department=f.opt_text("Department"),
        staff=f.opt_text("Staff"),
        mobile=f.opt_text("Mobile"),
        email=f.opt_text("Email"),
        department_id=f.opt_text("DepartmentId"),
        staff_id=f.opt_text("StaffId"),
    )


def read_response_for(element: etree._Element) -> ResponseFor:
    """The :class:`ResponseFor` of a ``ResponseFor`` element, its children in any order."""
    f = _f(element)
    return ResponseFor(
        organ_id=_token(f, "OrganId"),
        code=_token(f, "Code"),
        promulgation_date=_opt_date(f, "PromulgationDate"),
        document_id=_token(f, "DocumentId"),
    )


def _read_trace_header(element: etree._Element) -> TraceHeader:
    f = _f(element)
    return TraceHeader(f.text("OrganId").strip(), parse_timestamp(f.text("Timestamp")))


def _read_business(element: etree._Element | None) -> Business:
    if element is None:
        return Business()
    f = _f(element)
    info = f.opt_child("BussinessDocumentInfo")
    update = None
    if info is not None:
        fi = _f(info)
        receivers_el = fi.opt_child("ReceiverList")
        receivers: tuple[Receiver, ...] = ()
        if receivers_el is not None:
            receivers = tuple(
                Receiver(_f(r).text("OrganId").strip(), _opt_int(_f(r), "ReceiverType"))
                for r in _f(receivers_el).children("Receiver")
            )
        update = UpdateInfo(
            _opt_bit(fi, "DocumentInfo"), _opt_bit(fi, "DocumentReceiver"), receivers
        )
    replacements_el = f.opt_child("ReplacementInfoList")
    replacements = []
    if replacements_el is not None:
        for info_el in _f(replacements_el).children("ReplacementInfo"):
            fr = _f(info_el)
            organs_el = fr.opt_child("OrganIdList")
            organs = (
                ()
                if organs_el is None
                else tuple((text_of(o) or "").strip() for o in _f(organs_el).children("OrganId"))
            )
            replacements.append(Replacement(fr.text("DocumentId").strip(), organs))
    return Business(
        doc_type=BusinessDocType(parse_int(f.text("BussinessDocType"), "BussinessDocType")),
        reason=f.opt_text("BussinessDocReason"),
        document_id=_token(f, "DocumentId"),
        paper=_opt_bit(f, "Paper"),
        update=update,
        replacements=tuple(replacements),
        staff=read_staff(f.opt_child("StaffInfo")),
    )


def _read_reference(element: etree._Element) -> Reference:
    f = _f(element)
    return Reference(
        f.text("ContentId").strip(),
        f.text("ContentType").strip(),
        f.text("AttachmentName"),
        f.opt_text("Description"),
        element.get(XLINK_HREF),
    )


def message_header(root: etree._Element) -> Fields:
    """The children of an ``edXML`` root's MessageHeader."""
    if root.tag != EDOC_TAG:
        raise SchemaInvalid(f"expected an edXML root, found {root.tag!r}")
    envelope = _f(_f(root).child("edXMLEnvelope"))
    return _f(_f(envelope.child("edXMLHeader")).child("MessageHeader"))


def read_edoc(root: etree._Element, *, with_attachments: bool = True) -> Edoc:
    """The :class:`Edoc` of an ``edXML`` element (no schema check here)."""
    mh = message_header(root)
    top = _f(root)
    envelope = _f(top.child("edXMLEnvelope"))
    header = _f(envelope.child("edXMLHeader"))
    code = _f(mh.child("Code"))
    promulgation = _f(mh.child("PromulgationInfo"))
    doc_type = _f(mh.child("DocumentType"))
    other_el = mh.opt_child("OtherInfo")
    other = _f(other_el) if other_el is not None else None
    trace = _f(header.child("TraceHeaderList"))
    places = mh.opt_child("ToPlaces")
    manifest_el = _f(_f(envelope.child("edXMLBody")).child("edXMLManifest"))
    manifest = tuple(_read_reference(ref) for ref in manifest_el.children("Reference"))
    appendixes_el = None if other is None else other.opt_child("Appendixes")
    priority = None if other is None else _opt_int(other, "Priority")

    return Edoc(
        sender=read_organization(mh.child("From")),
        recipients=tuple(read_organization(to) for to in mh.children("To")),
        number=code.text("CodeNumber").strip(),
        notation=code.text("CodeNotation").strip(),
        promulgation_date=parse_date(promulgation.text("PromulgationDate")),
        subject=mh.text("Subject"),
        document_type=parse_int(doc_type.text("Type"), "Type"),
        type_detail=doc_type.opt_text("TypeDetail"),
        type_name=doc_type.opt_text("TypeName"),
        place=promulgation.opt_text("Place"),
        content=mh.opt_text("Content"),
        signer=_read_signer(mh.opt_child("SignerInfo")),
        due_date=_opt_date(mh, "DueDate"),
        to_places=()
        if places is None
        else tuple(text_of(p) or "" for p in _f(places).children("Place")),
        steering_type=SteeringType(parse_int(mh.text("SteeringType"), "SteeringType")),
        priority=Priority(priority or 0),
        sphere_of_promulgation=None if other is None else other.opt_text("SphereOfPromulgation"),
        typer_notation=None if other is None else other.opt_text("TyperNotation"),
        promulgation_amount=None if other is None else _opt_int(other, "PromulgationAmount"),
        page_amount=None if other is None else _opt_int(other, "PageAmount"),
        direction=None if other is None else _opt_bit(other, "Direction"),
        appendixes=()
        if appendixes_el is None
        else tuple(text_of(a) or "" for a in _f(appendixes_el).children("Appendix")),
        response_for=tuple(read_response_for(rf) for rf in mh.children("ResponseFor")),
        trace=tuple(_read_trace_header(th) for th in trace.children("TraceHeader")),
        business=_read_business(trace.opt_child("Bussiness")),
        attachments=_read_attachments(top, manifest) if with_attachments else (),
        manifest=manifest,
        document_id=mh.text("DocumentId").strip(),
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
