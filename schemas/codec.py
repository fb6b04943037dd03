"""``to_element`` and ``to_bytes``: any Axis document object to XML."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lxml import etree

from schemas.edoc import Edoc, build_edoc
from schemas.hub import AxisReceipt, AxisRejection, build_receipt, build_rejection
from schemas.status import Status, build_status

Document = Edoc | Status | AxisReceipt | AxisRejection

_BUILDERS: dict[type, Callable[[Any], etree._Element]] = {
    Edoc: build_edoc,
    Status: build_status,
    AxisReceipt: build_receipt,
    AxisRejection: build_rejection,
}


def to_element(obj: Document) -> etree._Element:
    """The unsigned XML element of an Edoc, Status, AxisReceipt or AxisRejection.

    Raises TypeError for other objects and ValueError for text XML cannot carry
    (control characters) or a naive datetime.
    """
    builder = _BUILDERS.get(type(obj))
    if builder is None:
        raise TypeError(f"cannot serialize a {type(obj).__name__}")
    return builder(obj)


def to_bytes(obj: Document) -> bytes:
    """``obj`` as one UTF-8 XML document with an XML declaration, deterministic, unsigned."""
    return element_bytes(to_element(obj))


def element_bytes(element: etree._Element) -> bytes:
    """Serialize an element the way :func:`to_bytes` does (e.g. after signing it)."""
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")
