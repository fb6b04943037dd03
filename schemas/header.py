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

from schemas._common import EDXML_NS, parse_date
from schemas.edoc import BusinessDocType, action_targets
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
    targets: tuple[str, ...] = ()
    """The DocumentIds a revoke, update or replacement acts on (EDXML.md 1.2)."""
    new_receivers: tuple[str, ...] = ()
    """An update's ``ReceiverList`` when ``DocumentReceiver`` is 1: it reaches them too."""
    replaced_for: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """A replacement's (DocumentId, OrganIdList) per ``ReplacementInfo``."""


def _texts(parent: etree._Element | None, child: str, leaf: str) -> tuple[str, ...]:
    if parent is None:
        return ()
    return tuple(
        _inner_text(element, _tag(leaf)) or "" for element in parent.iterchildren(_tag(child))
    )


def _business(root: etree._Element, document_id: str) -> tuple:
    """(type, reason, targets, new receivers, replaced-for) from the one Bussiness, if any."""
    found = _BUSINESS(root)
    if not found:
        return 0, None, (), (), ()
    business = {child.tag: child for child in found[0]}
    doc_type = int(_stripped(business.get(_tag("BussinessDocType"))) or 0)
    reason = _stripped(business.get(_tag("BussinessDocReason")))
    receivers: tuple[str, ...] = ()
    replaced: list[tuple[str, tuple[str, ...]]] = []
    if doc_type == BusinessDocType.UPDATE:
        info = business.get(_tag("BussinessDocumentInfo"))
        if info is not None and _inner_text(info, _tag("DocumentReceiver")) == "1":
            receivers = _texts(
                next(info.iterchildren(_tag("ReceiverList")), None), "Receiver", "OrganId"
            )
    elif doc_type == BusinessDocType.REPLACE:
        for info in business[_tag("ReplacementInfoList")].iterchildren(_tag("ReplacementInfo")):
            organs = next(info.iterchildren(_tag("OrganIdList")), None)
            organ_ids = (
                ()
                if organs is None
                else tuple((text_of(o) or "").strip() for o in organs.iterchildren(_ORGAN_ID))
            )
            replaced.append((_inner_text(info, _tag("DocumentId")) or "", organ_ids))
    targets = action_targets(
        doc_type,
        document_id,
        _stripped(business.get(_tag("DocumentId"))),
        [target for target, _ in replaced],
    )
    return doc_type, reason, targets, receivers, tuple(replaced)


def read_header(root: etree._Element) -> EdocHeader:
    """The routing facts of a validated ``edXML`` document root.

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
    document_id = _stripped(fields.get(_tag("DocumentId"))) or ""
    business_type, reason, targets, new_receivers, replaced_for = _business(root, document_id)
    due = _stripped(fields.get(_tag("DueDate")))
    return EdocHeader(
        document_id=document_id,
        sender=_inner_text(fields.get(_tag("From")), _ORGAN_ID) or "",
        recipients=tuple(recipients),
        subject=text_of(fields.get(_tag("Subject"))) or "",
        document_type=int(_inner_text(fields.get(_tag("DocumentType")), _TYPE) or 0),
        priority=int(_inner_text(fields.get(_tag("OtherInfo")), _PRIORITY) or 0),
        steering_type=int(_stripped(fields.get(_tag("SteeringType"))) or 1),
        due_date=parse_date(due) if due else None,
        business_type=business_type,
        business_reason=reason,
        targets=targets,
        new_receivers=new_receivers,
        replaced_for=replaced_for,
    )
