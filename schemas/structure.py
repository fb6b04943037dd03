"""What XSD 1.0 cannot say about an edXML envelope, checked in one pass after the schema.

``edxml.xsd`` checks every element's content and every value's format, but it
declares ``MessageHeader``, ``From``/``To`` and ``TraceHeaderList`` as a repeated
choice, because real senders order their children differently (EDXML.md 1.1, 1.2)
and XSD 1.0 has no "any order, each at most so often" for content that also
repeats. This module counts those children against EDXML.md's cardinalities, tells
a document from a status (a status has no ``To``), checks that dates are days of
the calendar, and that a revoke, update or replace names what it acts on.

Every refusal is :class:`SchemaInvalid` naming the element and its line, like the
schema's own errors.
"""

from __future__ import annotations

from datetime import date

from lxml import etree

from axis.rejections import SchemaInvalid
from schemas._common import EDXML_NS, Fields

_Q = f"{{{EDXML_NS}}}"

ONCE = (1, 1)
OPTIONAL = (0, 1)
MANY = (1, None)
ANY = (0, None)

DOCUMENT_HEADER: dict[str, tuple[int, int | None]] = {
    "From": ONCE,
    "To": MANY,
    "DocumentId": ONCE,
    "Code": ONCE,
    "PromulgationInfo": ONCE,
    "DocumentType": ONCE,
    "Subject": ONCE,
    "Content": OPTIONAL,
    "SignerInfo": OPTIONAL,
    "DueDate": OPTIONAL,
    "OtherInfo": OPTIONAL,
    "ResponseFor": ANY,
    "SteeringType": ONCE,
    "ToPlaces": OPTIONAL,
}
"""EDXML.md 1.1: the children of a document's MessageHeader, in any order."""

STATUS_HEADER: dict[str, tuple[int, int | None]] = {
    "From": ONCE,
    "ResponseFor": ONCE,
    "StaffInfo": OPTIONAL,
    "StatusCode": ONCE,
    "Description": OPTIONAL,
    "Timestamp": ONCE,
}
"""EDXML.md 2: the children of a status's MessageHeader, in any order."""

_RESPONSE_FOR = ("OrganId", "Code", "PromulgationDate", "DocumentId")
_ORGAN_DETAILS = (
    "OrganizationInCharge",
    "OrganName",
    "OrganAdd",
    "Email",
    "Telephone",
    "Fax",
    "Website",
)


def _where(element: etree._Element) -> str:
    return f"line {element.sourceline}: {etree.QName(element).localname}"


def _children(element: etree._Element) -> dict[str, list[etree._Element]]:
    return Fields(element, EDXML_NS).by_name


def _count(
    parent: etree._Element,
    found: dict[str, list[etree._Element]],
    rules: dict[str, tuple[int, int | None]],
    what: str,
) -> None:
    for name, elements in found.items():
        if name not in rules:
            raise SchemaInvalid(f"{_where(elements[0])} is not part of {what}")
    for name, (least, most) in rules.items():
        elements = found.get(name, [])
        if len(elements) < least:
            raise SchemaInvalid(f"line {parent.sourceline}: {what} has no {name}")
        if most is not None and len(elements) > most:
            times = "once" if most == 1 else f"{most} times"
            raise SchemaInvalid(f"{_where(elements[most])} may appear only {times} in {what}")


def _calendar(element: etree._Element | None) -> None:
    """A ``yyyy/MM/dd`` (or timestamp) the schema let through must be a real day."""
    if element is None:
        return
    text = (element.text or "").strip()
    try:
        date(int(text[:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        raise SchemaInvalid(f"{_where(element)} {text!r} is not a day of the calendar") from None


def _organ_details(element: etree._Element) -> None:
    found = _children(element)
    for name in _ORGAN_DETAILS:
        extra = found.get(name, [])
        if len(extra) > 1:
            raise SchemaInvalid(f"{_where(extra[1])} may appear only once in {_where(element)}")


def _response_for(element: etree._Element, *, required: bool) -> None:
    found = _children(element)
    if not found and not required:
        return
    missing = [name for name in _RESPONSE_FOR if name not in found]
    if missing:
        raise SchemaInvalid(f"{_where(element)} has no {', '.join(missing)}")
    _calendar(found["PromulgationDate"][0])


def _first(found: dict[str, list[etree._Element]], name: str) -> etree._Element | None:
    elements = found.get(name)
    return elements[0] if elements else None


def _tag(name: str) -> str:
    return f"{_Q}{name}"


_ENVELOPE, _HEADER, _MESSAGE_HEADER, _TRACE, _BODY, _ATTACHMENTS = map(
    _tag,
    (
        "edXMLEnvelope",
        "edXMLHeader",
        "MessageHeader",
        "TraceHeaderList",
        "edXMLBody",
        "AttachmentEncoded",
    ),
)
_FROM, _TO, _RESPONSE, _BUSINESS, _DOC_TYPE = map(
    _tag, ("From", "To", "ResponseFor", "Bussiness", "BussinessDocType")
)
_DOCUMENT_RULES = {_tag(n): rule for n, rule in DOCUMENT_HEADER.items()}
_STATUS_RULES = {_tag(n): rule for n, rule in STATUS_HEADER.items()}
_DOCUMENT_REQUIRED = tuple(tag for tag, (least, _) in _DOCUMENT_RULES.items() if least)
_STATUS_REQUIRED = tuple(tag for tag, (least, _) in _STATUS_RULES.items() if least)
_DATE_PATHS = (
    (_tag("PromulgationInfo"), _tag("PromulgationDate")),
    (_tag("ResponseFor"), _tag("PromulgationDate")),
    (_tag("DueDate"), None),
    (_tag("Timestamp"), None),
)
_TRACE_HEADER, _TIMESTAMP = _tag("TraceHeader"), _tag("Timestamp")
_DOCUMENT_ID, _REPLACEMENTS = _tag("DocumentId"), _tag("ReplacementInfoList")


def _within(
    counts: dict[str, int], rules: dict[str, tuple[int, int | None]], required: tuple[str, ...]
) -> bool:
    for tag, found in counts.items():
        rule = rules.get(tag)  # None for another kind's field (or a processing instruction)
        if rule is None or (rule[1] is not None and found > rule[1]):
            return False
    return all(tag in counts for tag in required)


def _late(element: etree._Element) -> bool:
    """A date the pattern let through that could be past its month's end (the 29th on)."""
    return (element.text or "").strip()[8:10] > "28"


def _fine(root: etree._Element) -> str | None:
    """The kind of a root that breaks no rule, found with as few steps as possible; else None.

    Only a root that breaks one (or has a date from the 29th on) is walked by
    :func:`_check_in_detail`, to say where.
    """
    envelope = next(root.iterchildren(_ENVELOPE))
    header = next(envelope.iterchildren(_HEADER))
    message_header = next(header.iterchildren(_MESSAGE_HEADER))
    counts: dict[str, int] = {}
    dates: list[etree._Element] = []
    for child in message_header:
        tag = child.tag
        counts[tag] = counts.get(tag, 0) + 1
        if tag in (_FROM, _TO):
            details = [c.tag for c in child]
            if len(details) != len(set(details)):
                return None
    for parent, leaf in _DATE_PATHS:
        for element in message_header.iterchildren(parent):
            dates += element.iterchildren(leaf) if leaf else (element,)
    trace = next(header.iterchildren(_TRACE), None)
    has_body = next(envelope.iterchildren(_BODY), None) is not None
    replies = [len(reply) for reply in message_header.iterchildren(_RESPONSE)]
    if counts.get(_TO):
        if (
            not _within(counts, _DOCUMENT_RULES, _DOCUMENT_REQUIRED)
            or trace is None
            or not has_body
        ):
            return None
        if any(0 < n < 4 for n in replies):
            return None
        businesses = list(trace.iterchildren(_BUSINESS))
        if len(businesses) > 1:
            return None
        if businesses:
            business = businesses[0]
            doc_type = (next(business.iterchildren(_DOC_TYPE)).text or "").strip()
            if doc_type == "2" and next(business.iterchildren(_DOCUMENT_ID), None) is None:
                return None
            if doc_type == "3":
                return None  # its ReplacementInfo list: rare enough to walk in detail
        for hop in trace.iterchildren(_TRACE_HEADER):
            dates += hop.iterchildren(_TIMESTAMP)
        kind = "edoc"
    else:
        if not _within(counts, _STATUS_RULES, _STATUS_REQUIRED) or trace is not None or has_body:
            return None
        if replies != [4] or next(root.iterchildren(_ATTACHMENTS), None) is not None:
            return None
        kind = "status"
    return None if any(_late(d) for d in dates) else kind


def check(root: etree._Element) -> str:
    """Check a schema-valid ``edXML`` root's structure; return ``"edoc"`` or ``"status"``.

    Raises :class:`SchemaInvalid` naming the element and line at fault.
    """
    return _fine(root) or _check_in_detail(root)


def _check_in_detail(root: etree._Element) -> str:
    """:func:`check`, walking the tree to name the element and line at fault."""
    envelope = _children(root)["edXMLEnvelope"][0]
    parts = _children(envelope)
    header = parts["edXMLHeader"][0]
    header_parts = _children(header)
    message_header = header_parts["MessageHeader"][0]
    fields = _children(message_header)
    if "To" not in fields and "StatusCode" not in fields:
        raise SchemaInvalid(
            f"{_where(message_header)} has neither To (a document) nor StatusCode (a status)"
        )
    if "To" in fields:
        _count(message_header, fields, DOCUMENT_HEADER, "a document's MessageHeader")
        if "TraceHeaderList" not in header_parts:
            raise SchemaInvalid(f"{_where(header)} of a document has no TraceHeaderList")
        if "edXMLBody" not in parts:
            raise SchemaInvalid(f"{_where(envelope)} of a document has no edXMLBody")
        for organization in (*fields["From"], *fields["To"]):
            _organ_details(organization)
        for reply in fields.get("ResponseFor", ()):
            _response_for(reply, required=False)
        _calendar(_children(fields["PromulgationInfo"][0])["PromulgationDate"][0])
        _calendar(_first(fields, "DueDate"))
        _check_trace(header_parts["TraceHeaderList"][0])
        return "edoc"
    _count(message_header, fields, STATUS_HEADER, "a status's MessageHeader")
    for name, where in (("TraceHeaderList", header_parts), ("edXMLBody", parts)):
        if name in where:
            raise SchemaInvalid(f"{_where(where[name][0])} is not part of a status")
    attachments = _children(root).get("AttachmentEncoded")
    if attachments:
        raise SchemaInvalid(f"{_where(attachments[0])} is not part of a status")
    _organ_details(fields["From"][0])
    _response_for(fields["ResponseFor"][0], required=True)
    _calendar(fields["Timestamp"][0])
    return "status"


def _check_trace(trace: etree._Element) -> None:
    found = _children(trace)
    businesses = found.get("Bussiness", [])
    if len(businesses) > 1:
        raise SchemaInvalid(f"{_where(businesses[1])} may appear only once in TraceHeaderList")
    for hop in found.get("TraceHeader", ()):
        _calendar(_children(hop)["Timestamp"][0])
    if not businesses:
        return
    business = _children(businesses[0])
    doc_type = (business["BussinessDocType"][0].text or "").strip()
    if doc_type == "2" and "DocumentId" not in business:
        raise SchemaInvalid(
            f"{_where(businesses[0])}: an update (BussinessDocType 2) names the document it "
            "updates in Bussiness/DocumentId"
        )
    if doc_type == "3":
        replacements = _first(business, "ReplacementInfoList")
        if replacements is None or not _children(replacements).get("ReplacementInfo"):
            raise SchemaInvalid(
                f"{_where(businesses[0])}: a replacement (BussinessDocType 3) names the documents "
                "it replaces in ReplacementInfoList/ReplacementInfo"
            )


def envelope_kind(root: etree._Element) -> str | None:
    """``"edoc"`` or ``"status"`` by the MessageHeader alone (a status has no ``To``), without
    checking anything else; None when ``root`` is no edXML envelope or says neither."""
    if root.tag != f"{_Q}edXML":
        return None
    for envelope in root.iterchildren(f"{_Q}edXMLEnvelope"):
        for header in envelope.iterchildren(f"{_Q}edXMLHeader"):
            for message_header in header.iterchildren(f"{_Q}MessageHeader"):
                fields = _children(message_header)
                if "To" in fields:
                    return "edoc"
                return "status" if "StatusCode" in fields else None
    return None
