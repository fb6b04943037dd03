"""The hub's signed answers: receipts, rejections and audit chain heads.

Every document the hub accepts earns its sender an ``AxisReceipt`` naming the
SHA-256 of the bytes, the hub's receipt time, and the audit sequence number and
chain hash at that point — so each agency holds a signed witness of the hub's
history. Every message refused earns an ``AxisRejection`` with its code.
"""

from __future__ import annotations

from datetime import datetime

from lxml import etree

import schemas
from axis.audit.chain import format_time
from schemas.hub import canonical_receipt
from signing import Signer

HUB_NS = "urn:axis:hub:1"


class ReceiptWriter:
    """Builds and signs the hub's messages with the hub's key (ECDSA P-256 by default)."""

    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def receipt(
        self,
        *,
        receipt_id: str,
        message_id: str,
        kind: str,
        sender: str,
        document_id: str | None,
        sha256: str,
        received_at: datetime,
        audit_seq: int,
        chain_hash: str,
        delivered: tuple[str, ...],
        skipped: tuple[str, ...] = (),
        signature_profile: str | None = None,
    ) -> bytes:
        """A signed ``AxisReceipt``; ``skipped`` are suspended group members not delivered to."""
        outcomes = [schemas.RecipientOutcome(code, "delivered") for code in delivered]
        outcomes += [schemas.RecipientOutcome(code, "suspended") for code in skipped]
        receipt = schemas.AxisReceipt(
            receipt_id=receipt_id,
            message_id=message_id,
            kind=kind,  # type: ignore[arg-type]
            sender=sender,
            sha256=sha256,
            received_at=received_at,
            audit_seq=audit_seq,
            chain_hash=chain_hash,
            recipients=tuple(outcomes),
            document_id=document_id,
            signature_profile=signature_profile,
        )
        return self.signer.sign_canonical(canonical_receipt(receipt), before=b"</AxisReceipt>")

    def rejection(
        self,
        *,
        receipt_id: str,
        code: str,
        reason: str,
        rejected_at: datetime,
        audit_seq: int,
        chain_hash: str,
        message_id: str | None,
        document_id: str | None,
        sender: str | None,
    ) -> bytes:
        """A signed ``AxisRejection`` with a PROTOCOL section 4 code."""
        rejection = schemas.AxisRejection(
            receipt_id=receipt_id,
            code=code,
            reason=reason,
            rejected_at=rejected_at,
            audit_seq=audit_seq,
            chain_hash=chain_hash,
            message_id=message_id,
            document_id=document_id,
            sender=sender,
        )
        return self._sign(schemas.to_element(rejection))

    def chain_head(self, *, seq: int, chain_hash: str, signed_at: datetime) -> bytes:
        """A signed ``AxisChainHead``: the hub's statement of its audit chain at ``seq``."""
        root = etree.Element(f"{{{HUB_NS}}}AxisChainHead", nsmap={None: HUB_NS})
        etree.SubElement(root, f"{{{HUB_NS}}}Seq").text = str(seq)
        etree.SubElement(root, f"{{{HUB_NS}}}ChainHash").text = chain_hash
        etree.SubElement(root, f"{{{HUB_NS}}}SignedAt").text = format_time(signed_at)
        return self._sign(root)

    def _sign(self, element: etree._Element) -> bytes:
        # The hub's own documents are canonicalized once and signed as bytes: no
        # second canonicalization, no Signature tree (see Signer.sign_canonical).
        canonical = etree.tostring(element, method="c14n", exclusive=True, with_comments=False)
        return self.signer.sign_canonical(
            canonical, before=f"</{etree.QName(element).localname}>".encode()
        )


def read_chain_head(root: etree._Element) -> tuple[int, str, str]:
    """(seq, chain hash, signed-at text) of an ``AxisChainHead`` element."""
    ns = f"{{{HUB_NS}}}"
    if root.tag != f"{ns}AxisChainHead":
        raise ValueError(f"not an AxisChainHead: {root.tag}")
    seq = int(root.findtext(f"{ns}Seq") or "0")
    return seq, root.findtext(f"{ns}ChainHash") or "", root.findtext(f"{ns}SignedAt") or ""
