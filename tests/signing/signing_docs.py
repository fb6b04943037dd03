"""Minimal test documents built with lxml, independent of the ``schemas`` package.

Shapes follow PROTOCOL sections 3 and 4 closely enough for the signature profile:
where the Signature goes and what surrounds it.
"""

from __future__ import annotations

import base64
import os

from lxml import etree

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
HUB_NS = "urn:axis:hub:1"

SUBJECT = "Về việc triển khai trục liên thông văn bản quốc gia"


def _e(parent: etree._Element, local: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, f"{{{EDXML_NS}}}{local}")
    if text is not None:
        element.text = text
    return element


def edoc_element(
    size: int = 8 * 1024,
    *,
    sender: str = "000.00.00.G22",
    recipients: tuple[str, ...] = ("000.00.00.H41",),
    subject: str = SUBJECT,
    pretty: bool = True,
) -> etree._Element:
    """An unsigned edXML document padded by a base64 attachment to about ``size`` bytes."""
    root = etree.Element(f"{{{EDXML_NS}}}edXML", nsmap={"edXML": EDXML_NS})
    envelope = _e(root, "edXMLEnvelope")
    header = _e(envelope, "edXMLHeader")
    message = _e(header, "MessageHeader")
    _e(_e(message, "From"), "OrganId", sender)
    for code in recipients:
        _e(_e(message, "To"), "OrganId", code)
    _e(message, "DocumentId", f"{sender},2026/11/20,101/VPCP-KSTT")
    _e(message, "Subject", subject)
    trace = _e(header, "TraceHeaderList")
    item = _e(trace, "TraceHeader")
    _e(item, "OrganId", sender)
    _e(item, "Timestamp", "2026-11-20T08:00:00+07:00")
    body = _e(envelope, "edXMLBody")
    reference = _e(_e(body, "edXMLManifest"), "Reference")
    _e(reference, "ContentId", "cid:1")
    _e(reference, "ContentType", "application/pdf")
    _e(reference, "AttachmentName", "vanban.pdf")
    attachment = _e(_e(root, "AttachmentEncoded"), "Attachment")
    _e(attachment, "ContentId", "cid:1")
    encoded = _e(attachment, "ContentTransferEncoded", "")
    if pretty:
        etree.indent(root)
    overhead = len(etree.tostring(root))
    padding = max(0, size - overhead)
    encoded.text = base64.b64encode(os.urandom(padding * 3 // 4 + 3)).decode()[:padding]
    return root


def edoc(size: int = 8 * 1024, **kwargs: object) -> bytes:
    """An unsigned edXML document as UTF-8 bytes with an XML declaration."""
    return etree.tostring(
        edoc_element(size, **kwargs),  # type: ignore[arg-type]
        xml_declaration=True,
        encoding="UTF-8",
    )


def status(code: str = "01") -> bytes:
    """An unsigned ``Status`` for a received document."""
    root = etree.Element(f"{{{EDXML_NS}}}Status", nsmap={None: EDXML_NS})
    response = _e(root, "ResponseFor")
    _e(response, "OrganId", "000.00.00.G22")
    _e(response, "DocumentId", "000.00.00.G22,2026/11/20,101/VPCP-KSTT")
    _e(_e(root, "From"), "OrganId", "000.00.00.H41")
    _e(root, "StatusCode", code)
    _e(root, "Description", "Đã đến")
    _e(root, "Timestamp", "2026-11-20T08:01:00+07:00")
    etree.indent(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def receipt() -> bytes:
    """An unsigned hub ``AxisReceipt`` (its signature goes last in the root)."""
    root = etree.Element(f"{{{HUB_NS}}}AxisReceipt", nsmap={None: HUB_NS})
    for local, text in (
        ("MessageId", "2f1c0d8e-1111-4a4a-9c9c-000000000001"),
        ("DocumentId", "000.00.00.G22,2026/11/20,101/VPCP-KSTT"),
        ("Sha256", "00" * 32),
        ("ReceivedAt", "2026-11-20T01:00:00.000000Z"),
    ):
        etree.SubElement(root, f"{{{HUB_NS}}}{local}").text = text
    etree.indent(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
