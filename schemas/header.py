"""The routing facts of an edoc, read fast for the router's hot path.

:func:`read_edoc` builds the whole typed :class:`~schemas.Edoc`; the router needs
only a dozen header fields per document, at thousands of documents a second, so
:func:`read_header` reads just those, with precompiled paths, from a root that
has already passed :func:`schemas.validate` (which guarantees they are there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from lxml import etree

from schemas._common import EDXML_NS
from schemas.xml import text_of

_NS = {"e": EDXML_NS}


def _path(expression: str) -> etree.XPath:
    return etree.XPath(expression, namespaces=_NS, smart_strings=False)


_MESSAGE_HEADER = _path("e:edXMLEnvelope/e:edXMLHeader/e:MessageHeader")
_BUSINESS = _path("e:edXMLEnvelope/e:edXMLHeader/e:TraceHeaderList/e:Bussiness")


def _tag(local: str) -> str:
    return f"{{{EDXML_NS}}}{local}"


_TO, _ORGAN_ID, _TYPE, _PRIORITY = _tag("To"), _tag("OrganId"), _tag("Type"), _tag("Priority")


def _inner_text(parent: etree._Element | None, tag: str) -> str | None:
    """Text of the first ``tag`` child (iterchildren, not find(): no path parsing)."""
    if parent is None:
        return None
    child = next(parent.iterchildren(tag), None)
    return None if child is None else (text_of(child) or "").strip()


def _stripped(element: etree._Element | None) -> str | None:
    return None if element is None else (text_of(element) or "").strip()


@dataclass(frozen=True, slots=True)
class EdocHeader:
    """What routing, authorization and the delivery log need from an edoc."""

    document_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    document_type: int
    priority: int
    steering_type: int
    due_date: date | None
    business_type: int
    """``BussinessDocType``: 0 new, 1 revoke, 2 update, 3 replace."""
    business_reason: str | None
    replaces: str | None
    """``ReplacementInfo``: the DocumentId a revoke/update/replace acts on."""


def read_header(root: etree._Element) -> EdocHeader:
    """The routing facts of a validated ``edXML`` root.

    One pass over the MessageHeader's children and one over Bussiness's: lxml's
    ``find`` parses its path on every call, which cost more than the rest here.
    """
    fields: dict[object, etree._Element] = {}
    recipients: list[str] = []
    for child in _MESSAGE_HEADER(root)[0]:
        if child.tag == _TO:
            recipients.append(_inner_text(child, _ORGAN_ID) or "")
        else:
            fields[child.tag] = child
    business = {child.tag: child for child in _BUSINESS(root)[0]}
    due = _stripped(fields.get(_tag("DueDate")))
    return EdocHeader(
        document_id=_stripped(fields.get(_tag("DocumentId"))) or "",
        sender=_inner_text(fields.get(_tag("From")), _ORGAN_ID) or "",
        recipients=tuple(recipients),
        subject=text_of(fields.get(_tag("Subject"))) or "",
        document_type=int(_inner_text(fields.get(_tag("DocumentType")), _TYPE) or 0),
        priority=int(_inner_text(fields.get(_tag("OtherInfo")), _PRIORITY) or 0),
        steering_type=int(_stripped(fields.get(_tag("SteeringType"))) or 1),
        due_date=date.fromisoformat(due) if due else None,
        business_type=int(_stripped(business.get(_tag("BussinessDocType"))) or 0),
        business_reason=_stripped(business.get(_tag("BussinessDocReason"))),
        replaces=_stripped(business.get(_tag("ReplacementInfo"))),
    )
