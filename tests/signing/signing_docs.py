"""Minimal test documents built with lxml, independent of the ``schemas`` package.

Shapes follow PROTOCOL sections 3 and 4 and EDXML.md closely enough for the
signature profiles: where the Signature goes, what surrounds it, and the namespace
prefixes real files use.
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


def status(code: str = "01", *, default_namespace: bool = False) -> bytes:
    """An unsigned status (EDXML.md section 2): an edXML envelope, MessageHeader only.

    Its Signature goes last in ``edXMLHeader``, as for a document. With
    ``default_namespace`` the edXML namespace is the default one, as the SDK writes.
    """
    nsmap = {None: EDXML_NS} if default_namespace else {"edXML": EDXML_NS}
    root = etree.Element(f"{{{EDXML_NS}}}edXML", nsmap=nsmap)  # type: ignore[dict-item]
    message = _e(_e(_e(root, "edXMLEnvelope"), "edXMLHeader"), "MessageHeader")
    _e(_e(message, "From"), "OrganId", "000.00.00.H41")
    response = _e(message, "ResponseFor")
    _e(response, "OrganId", "000.00.00.G22")
    _e(response, "Code", "101/VPCP-KSTT")
    _e(response, "PromulgationDate", "2026/11/20")
    _e(response, "DocumentId", "000.00.00.G22,2026/11/20,101/VPCP-KSTT")
    _e(_e(message, "StaffInfo"), "Department", "Văn thư")
    _e(message, "StatusCode", code)
    _e(message, "Description", "Đã đến")
    _e(message, "Timestamp", "2026/11/20 08:01:00")
    etree.indent(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


SDK_EDOC = """<?xml version="1.0" encoding="UTF-8"?>
<edXML xmlns="{q}" xmlns:xlink="http://www.w3.org/1999/xlink"{lang}>
  <edXML:edXMLEnvelope xmlns:edXML="{q}">
    <edXML:edXMLHeader>
      <edXML:MessageHeader>
        <edXML:From><edXML:OrganId>000.00.00.G22</edXML:OrganId>
          <edXML:OrganName>Văn phòng Chính phủ</edXML:OrganName></edXML:From>
        <edXML:To><edXML:OrganId>000.00.00.H41</edXML:OrganId></edXML:To>
        <edXML:DocumentId>000.00.00.G22,2015/09/30,7816/VPCP-TTĐT</edXML:DocumentId>
        <edXML:Code><edXML:CodeNumber>7816</edXML:CodeNumber>
          <edXML:CodeNotation>VPCP-TTĐT</edXML:CodeNotation></edXML:Code>
        <edXML:Subject>{subject}</edXML:Subject>
        <edXML:SteeringType>1</edXML:SteeringType>
      </edXML:MessageHeader>
      <edXML:TraceHeaderList><edXML:TraceHeader>
        <edXML:OrganId>000.00.00.G22</edXML:OrganId>
        <edXML:Timestamp>2015/09/30 10:00:00</edXML:Timestamp>
      </edXML:TraceHeader></edXML:TraceHeaderList>
    {signature}</edXML:edXMLHeader>
    <edXML:edXMLBody><edXML:edXMLManifest version="1.0"><edXML:Reference
      xlink:href="cid:209"><edXML:ContentId>cid:209</edXML:ContentId>
      <edXML:ContentType>application/zip</edXML:ContentType>
      <edXML:AttachmentName>1896_QD-TTg.doc</edXML:AttachmentName></edXML:Reference>
    </edXML:edXMLManifest></edXML:edXMLBody>
  </edXML:edXMLEnvelope>
  <AttachmentEncoded><Attachment><ContentId>cid:209</ContentId>
    <AttachmentName>1896_QD-TTg.doc</AttachmentName><ContentType>application/zip</ContentType>
    <edXML:ContentTransferEncoded xmlns:edXML="{q}">{content}</edXML:ContentTransferEncoded>
  </Attachment></AttachmentEncoded>
</edXML>
"""


def sdk_edoc(signature: str = "", *, xml_lang: str | None = None) -> bytes:
    """An edXML document with the namespace prefixes of real files (EDXML.md section 1).

    The default namespace on the root, ``edXML:`` declared again on the envelope and
    on ``ContentTransferEncoded``, ``AttachmentEncoded`` unprefixed. ``signature``
    (XML text, e.g. an xmlsec1 template) goes last in ``edXMLHeader``. ``xml_lang``
    puts an ``xml:lang`` on the root, which inclusive C14N 1.0 carries into SignedInfo.
    """
    lang = f' xml:lang="{xml_lang}"' if xml_lang is not None else ""
    content = base64.b64encode(b"PK\x03\x04" + bytes(range(256)) * 8).decode()
    return SDK_EDOC.format(
        q=EDXML_NS, lang=lang, subject=SUBJECT, signature=signature, content=content
    ).encode()


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
