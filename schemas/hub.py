"""The hub's own messages (PROTOCOL section 4): AxisReceipt and AxisRejection."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from lxml import etree

from axis.rejections import CODES, Rejection, SchemaInvalid, from_code
from schemas._common import (
    HUB_NS,
    HUB_NSMAP,
    Fields,
    Writer,
    format_datetime,
    parse_datetime,
    parse_int,
    root_of,
)
from schemas.validate import expect_kind
from schemas.xml import DEFAULT_MAX_BYTES

RECEIPT_TAG = f"{{{HUB_NS}}}AxisReceipt"
REJECTION_TAG = f"{{{HUB_NS}}}AxisRejection"

_w = Writer(HUB_NS)


@dataclass(frozen=True)
class RecipientOutcome:
    """What the hub did for one recipient of an accepted message."""

    organ_id: str
    outcome: str = "delivered"
    delivered_at: datetime | None = None


@dataclass(frozen=True)
class AxisReceipt:
    """The hub's signed receipt for an accepted document or status.

    ``sha256`` is the hex digest of the message bytes as received; ``chain_hash``
    the audit trail's hash after recording it. ``receipt_id`` and ``message_id``
    must pass :func:`schemas.ids.is_message_id` (a UUID does) for the receipt to
    satisfy hub.xsd; times are written as UTC with microseconds.
    """

    receipt_id: str
    message_id: str
    kind: Literal["edoc", "status"]
    sender: str
    sha256: str
    received_at: datetime
    audit_seq: int
    chain_hash: str
    recipients: tuple[RecipientOutcome, ...] = ()
    document_id: str | None = None
    signature_profile: str | None = None
    """``strict`` or ``legacy``: the profile the sender's signature verified under."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "recipients", tuple(self.recipients))
        if self.kind not in ("edoc", "status"):
            raise ValueError(f"a receipt is for an edoc or a status, not {self.kind!r}")


@dataclass(frozen=True)
class AxisRejection:
    """The hub's signed refusal of a message, with its PROTOCOL section 4 code.

    Leave ``message_id`` None when it fails :func:`schemas.ids.is_message_id`, and
    ``document_id`` None unless it is a well-formed DocumentId: hub.xsd holds both.
    """

    receipt_id: str
    code: str
    reason: str
    rejected_at: datetime
    audit_seq: int
    chain_hash: str
    message_id: str | None = None
    document_id: str | None = None
    sender: str | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"{self.code!r} is not a rejection code")

    def to_exception(self) -> Rejection:
        """The :class:`~axis.rejections.Rejection` this message reports."""
        return from_code(self.code, self.reason)


def canonical_receipt(receipt: AxisReceipt) -> bytes:
    """The unsigned ``AxisReceipt`` for ``receipt``, written in exclusive canonical form.

    The hub writes one per document, so it writes the canonical bytes directly
    (about a third of the cost of :func:`build_receipt` and canonicalizing its tree)
    for :meth:`signing.Signer.sign_canonical`. Raises ValueError for text XML cannot
    carry, as lxml does. Tests hold the two byte for byte to lxml's exclusive C14N.
    """
    parts = [
        f'<AxisReceipt xmlns="{HUB_NS}">',
        _c14n("ReceiptId", receipt.receipt_id),
        _c14n("MessageId", receipt.message_id),
        _c14n("Kind", receipt.kind),
        "" if receipt.document_id is None else _c14n("DocumentId", receipt.document_id),
        _c14n("Sender", receipt.sender),
        _c14n("Sha256", receipt.sha256),
        _c14n("ReceivedAt", format_datetime(receipt.received_at)),
        _c14n("AuditSeq", str(receipt.audit_seq)),
        _c14n("ChainHash", receipt.chain_hash),
        ""
        if receipt.signature_profile is None
        else _c14n("SignatureProfile", receipt.signature_profile),
        "<Recipients>",
    ]
    for recipient in receipt.recipients:
        parts += (
            "<Recipient>",
            _c14n("OrganId", recipient.organ_id),
            _c14n("Outcome", recipient.outcome),
            ""
            if recipient.delivered_at is None
            else _c14n("DeliveredAt", format_datetime(recipient.delivered_at)),
            "</Recipient>",
        )
    parts.append("</Recipients></AxisReceipt>")
    return "".join(parts).encode("utf-8")


def build_receipt(receipt: AxisReceipt) -> etree._Element:
    """The unsigned ``AxisReceipt`` element for ``receipt``."""
    root = etree.Element(RECEIPT_TAG, nsmap=HUB_NSMAP)
    _w.sub(root, "ReceiptId", receipt.receipt_id)
    _w.sub(root, "MessageId", receipt.message_id)
    _w.sub(root, "Kind", receipt.kind)
    _w.opt(root, "DocumentId", receipt.document_id)
    _w.sub(root, "Sender", receipt.sender)
    _w.sub(root, "Sha256", receipt.sha256)
    _w.sub(root, "ReceivedAt", format_datetime(receipt.received_at))
    _w.sub(root, "AuditSeq", str(receipt.audit_seq))
    _w.sub(root, "ChainHash", receipt.chain_hash)
    _w.opt(root, "SignatureProfile", receipt.signature_profile)
    recipients = _w.sub(root, "Recipients")
    for recipient in receipt.recipients:
        el = _w.sub(recipients, "Recipient")
        _w.sub(el, "OrganId", recipient.organ_id)
        _w.sub(el, "Outcome", recipient.outcome)
        if recipient.delivered_at is not None:
            _w.sub(el, "DeliveredAt", format_datetime(recipient.delivered_at))
    return root


_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""What XML 1.0's Char production leaves out: control characters, surrogates, U+FFFE/F."""
_C14N_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#xD;"})
"""The escapes of text in canonical XML, and only those."""


def _c14n(name: str, text: str) -> str:
    """An element of the default namespace with ``text``, as canonical XML writes it."""
    if _NOT_XML_CHAR.search(text):
        raise ValueError(f"{name}: all strings must be XML compatible (no control characters)")
    return f"<{name}>{text.translate(_C14N_ESCAPES)}</{name}>"


def build_rejection(rejection: AxisRejection) -> etree._Element:
    """The unsigned ``AxisRejection`` element for ``rejection``."""
    root = etree.Element(REJECTION_TAG, nsmap=HUB_NSMAP)
    _w.sub(root, "ReceiptId", rejection.receipt_id)
    _w.opt(root, "MessageId", rejection.message_id)
    _w.opt(root, "DocumentId", rejection.document_id)
    _w.opt(root, "Sender", rejection.sender)
    _w.sub(root, "Code", rejection.code)
    _w.sub(root, "Reason", rejection.reason)
    _w.sub(root, "RejectedAt", format_datetime(rejection.rejected_at))
    _w.sub(root, "AuditSeq", str(rejection.audit_seq))
    _w.sub(root, "ChainHash", rejection.chain_hash)
    return root


def read_receipt(root: etree._Element) -> AxisReceipt:
    """The :class:`AxisReceipt` of an ``AxisReceipt`` element (no schema check here)."""
    if root.tag != RECEIPT_TAG:
        raise SchemaInvalid(f"expected an AxisReceipt root, found {root.tag!r}")
    top = Fields(root, HUB_NS)
    recipients = []
    for element in Fields(top.child("Recipients"), HUB_NS).children("Recipient"):
        f = Fields(element, HUB_NS)
        delivered_at = f.opt_text("DeliveredAt")
        recipients.append(
            RecipientOutcome(
                organ_id=f.text("OrganId"),
                outcome=f.text("Outcome"),
                delivered_at=None if delivered_at is None else parse_datetime(delivered_at),
            )
        )
    kind = top.text("Kind")
    if kind not in ("edoc", "status"):
        raise SchemaInvalid(f"Kind {kind!r} is neither edoc nor status")
    return AxisReceipt(
        receipt_id=top.text("ReceiptId"),
        message_id=top.text("MessageId"),
        kind="edoc" if kind == "edoc" else "status",
        sender=top.text("Sender"),
        sha256=top.text("Sha256"),
        received_at=parse_datetime(top.text("ReceivedAt")),
        audit_seq=parse_int(top.text("AuditSeq"), "AuditSeq"),
        chain_hash=top.text("ChainHash"),
        recipients=tuple(recipients),
        document_id=top.opt_text("DocumentId"),
        signature_profile=top.opt_text("SignatureProfile"),
    )


def read_rejection(root: etree._Element) -> AxisRejection:
    """The :class:`AxisRejection` of an ``AxisRejection`` element (no schema check here)."""
    if root.tag != REJECTION_TAG:
        raise SchemaInvalid(f"expected an AxisRejection root, found {root.tag!r}")
    top = Fields(root, HUB_NS)
    return AxisRejection(
        receipt_id=top.text("ReceiptId"),
        code=top.text("Code"),
        reason=top.text("Reason"),
        rejected_at=parse_datetime(top.text("RejectedAt")),
        audit_seq=parse_int(top.text("AuditSeq"), "AuditSeq"),
        chain_hash=top.text("ChainHash"),
        message_id=top.opt_text("MessageId"),
        document_id=top.opt_text("DocumentId"),
        sender=top.opt_text("Sender"),
    )


def parse_receipt(
    data: bytes | etree._Element,
    *,
    check_schema: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> AxisReceipt:
    """Parse an AxisReceipt from bytes or a parsed root (Malformed, TooLarge, SchemaInvalid)."""
    root = root_of(data, max_bytes)
    if check_schema:
        expect_kind(root, "receipt")
    try:
        return read_receipt(root)
    except ValueError as exc:
        raise SchemaInvalid(str(exc)) from None


def parse_rejection(
    data: bytes | etree._Element,
    *,
    check_schema: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> AxisRejection:
    """Parse an AxisRejection from bytes or a parsed root (Malformed, TooLarge, SchemaInvalid)."""
    root = root_of(data, max_bytes)
    if check_schema:
        expect_kind(root, "rejection")
    try:
        return read_rejection(root)
    except ValueError as exc:
        raise SchemaInvalid(str(exc)) from None
