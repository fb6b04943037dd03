"""Axis documents: the XSDs of the wire protocol and a typed API over them.

>>> from datetime import date
>>> from schemas import Edoc, Organization, to_bytes, parse_edoc
>>> edoc = Edoc(
...     sender=Organization("000.00.00.G22"),
...     recipients=[Organization("000.00.00.H41")],
...     number="101",
...     notation="VPCP-KSTT",
...     promulgation_date=date(2026, 11, 20),
...     subject="Về việc triển khai Nghị định số 30/2020/NĐ-CP về công tác văn thư",
... )
>>> edoc.document_id
'000.00.00.G22,2026/11/20,101/VPCP-KSTT'
>>> to_bytes(edoc).count(b"<edXML:PromulgationDate>2026/11/20<")
1
>>> parse_edoc(to_bytes(edoc)) == edoc
True

Parsing from bytes goes through the hardened parser of :mod:`schemas.xml`, so it
raises ``Malformed`` or ``TooLarge``; anything that does not satisfy the XSD raises
``SchemaInvalid`` (all from :mod:`axis.rejections`).
"""

from schemas.codec import Document, element_bytes, to_bytes, to_element
from schemas.edoc import (
    Attachment,
    Business,
    BusinessDocType,
    Edoc,
    Organization,
    Priority,
    Receiver,
    Reference,
    Replacement,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    SteeringType,
    TraceHeader,
    UpdateInfo,
    parse_edoc,
)
from schemas.header import EdocHeader, read_header
from schemas.hub import (
    AxisReceipt,
    AxisRejection,
    RecipientOutcome,
    parse_receipt,
    parse_rejection,
)
from schemas.ids import (
    DocumentId,
    is_document_id,
    is_group_id,
    is_message_id,
    is_organ_id,
    make_document_id,
)
from schemas.status import Status, StatusCode, parse_status
from schemas.validate import validate

__all__ = [
    "Attachment",
    "AxisReceipt",
    "AxisRejection",
    "Business",
    "BusinessDocType",
    "Document",
    "DocumentId",
    "Edoc",
    "EdocHeader",
    "Organization",
    "Priority",
    "Receiver",
    "RecipientOutcome",
    "Reference",
    "Replacement",
    "ResponseFor",
    "SignerInfo",
    "StaffInfo",
    "Status",
    "StatusCode",
    "SteeringType",
    "TraceHeader",
    "UpdateInfo",
    "element_bytes",
    "is_document_id",
    "is_group_id",
    "is_message_id",
    "is_organ_id",
    "make_document_id",
    "parse_edoc",
    "parse_receipt",
    "parse_rejection",
    "parse_status",
    "read_header",
    "to_bytes",
    "to_element",
    "validate",
]
