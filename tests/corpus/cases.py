"""The corpus table: every hostile message of issue #7, and the answer the hub owes it.

Each :class:`Case` has an id, a description, a ``build`` function that makes the
raw body and AMQP properties (:class:`Probe`) from a :class:`World` (the agencies
and certificates of a running hub), the registry state it relies on
(``precondition``, which the world sets up before the hub starts), and the
expected outcome: a rejection code of PROTOCOL section 4, :data:`QUARANTINED`
(nobody to answer: ``axis.quarantine`` and a ``QUARANTINED`` audit event), or
:data:`ACCEPTED` (an attack the hub is immune to by construction).

Where two checks could refuse a message, the expected code follows the order of
checks in docs/protocol.md ("The order of checks"): a wrapped or re-placed
signature that breaks the XSD is ``SCHEMA_INVALID`` before the signature is
looked at; each signature attack is otherwise built so that only the profile can
refuse it (the profile forgeries are correctly signed, with the wrong algorithm).

A publisher cannot set a ``user_id`` other than its own: RabbitMQ closes the
channel (``tests/broker/test_topology.py`` proves it), so a spoofed sender can only
be a spoofed ``From`` or certificate, and a message the hub cannot attribute is
one without ``user_id``.
"""

from __future__ import annotations

import base64
import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

import schemas
from axis.receipts import ReceiptWriter
from schemas.samples import sample_status
from signing import Signer
from signing.pki import CertifiedKey, KeyUsageFlags, generate_key, make_ca, make_leaf
from tests.corpus import build
from tests.corpus.build import DS, MESSAGE_HEADER, SUBJECT, E

ACCEPTED = "ACCEPTED"
"""Expected outcome of an attack that cannot work: a receipt, the bytes delivered."""
QUARANTINED = "QUARANTINED"
"""Expected outcome of a message without user_id: no answer, axis.quarantine, audit."""
OWN = ""
"""``Probe.user_id`` / ``Probe.message_id`` default: the publisher's code / a fresh UUID."""


class Party(Protocol):
    """A registered agency as builders see it."""

    code: str
    signer: Signer


class World(Protocol):
    """What the builders need from the hub under test (see ``tests/hub/test_corpus.py``)."""

    sender: Party
    """Registered and active: publishes every case unless the case says otherwise."""
    recipient: Party
    other: Party
    """A third registered agency."""
    suspended_sender: Party
    suspended_recipient: Party
    sender_rsa: Signer
    """A second certificate of ``sender``, RSA, registered: for attacks only RSA allows."""
    registry_revoked: Signer
    """A third certificate of ``sender``, registered, then revoked in the registry."""
    crl_revoked: Signer
    """A certificate for ``sender``'s code from the hub's CA, listed on the CRL the hub loads."""
    ca: CertifiedKey
    """The hub's trust anchor, with its key: builders mint certificates under it."""
    hub_signer: Signer
    max_bytes: int

    def edoc(self, party: Party, recipients: Sequence[str], **kwargs: object) -> schemas.Edoc:
        """A fresh unsigned edoc from ``party`` (a DocumentId never used before)."""
        ...

    def accepted(self, party: Party, recipients: Sequence[str], **kwargs: object) -> schemas.Edoc:
        """A fresh edoc from ``party``, signed, sent, and its receipt received."""
        ...


@dataclass(frozen=True)
class Probe:
    """One message to publish to ``axis.submit``: the body and its AMQP properties."""

    body: bytes
    type: str | None = "edoc"
    user_id: str | None = OWN
    message_id: str | None = OWN
    content_type: str | None = "application/xml"
    publisher: Party | None = None
    """Who publishes (with its own broker login); ``None`` is ``World.sender``."""
    document_id: str | None = None
    """For :data:`ACCEPTED` cases: the DocumentId the receipt must name."""


@dataclass(frozen=True)
class Case:
    """One row of the corpus."""

    id: str
    description: str
    build: Callable[[World], Probe]
    expect: str
    precondition: str = ""

    def __str__(self) -> str:
        return self.id


CASES: list[Case] = []


def case(
    id: str, expect: str, description: str, precondition: str = ""
) -> Callable[[Callable[[World], Probe]], Callable[[World], Probe]]:
    """Add the decorated builder to :data:`CASES` as a row of the table."""

    def register(builder: Callable[[World], Probe]) -> Callable[[World], Probe]:
        assert all(c.id != id for c in CASES), id
        CASES.append(Case(id, description, builder, expect, precondition))
        return builder

    return register


# Building blocks


def _doc(
    w: World, party: Party | None = None, to: Sequence[str] = (), **kw: object
) -> schemas.Edoc:
    party = party or w.sender
    return w.edoc(party, list(to) or [w.recipient.code], **kw)


def _signed(w: World, signer: Signer | None = None, **kw: object) -> bytes:
    return (signer or w.sender.signer).sign(schemas.to_element(_doc(w, **kw)))  # type: ignore[arg-type]


def _unsigned(w: World, **kw: object) -> bytes:
    return build.unsigned(_doc(w, **kw))  # type: ignore[arg-type]


def _forged(w: World, signer: CertifiedKey | None = None, **options: object) -> bytes:
    """A new edoc from the sender, correctly signed with ``options`` (see ``forge``)."""
    return build.forge(_unsigned(w), signer or build.certified(w.sender.signer), **options)


def _subject_text(body: bytes) -> bytes:
    start = body.index(b"<edXML:Subject>") + len(b"<edXML:Subject>")
    return body[start : body.index(b"</edXML:Subject>")]


def _in_subject(body: bytes, insert: bytes) -> bytes:
    """``insert`` placed inside the Subject text, after its first word."""
    text = _subject_text(body)
    cut = text.index(b" ")
    return build.replace_once(body, text, text[:cut] + insert + text[cut:])


def _status(w: World, by: Party, about: schemas.Edoc, **kw: object) -> schemas.Status:
    return sample_status(by.code, about, **kw)  # type: ignore[arg-type]


def _leaf(w: World, **kw: object) -> CertifiedKey:
    return make_leaf(w.sender.code, w.ca, **kw)  # type: ignore[arg-type]


def _now() -> datetime:
    return datetime.now(UTC)


# Not XML, or an attack on the parser: MALFORMED (or TOO_LARGE) before anything else.


@case("empty-body", "MALFORMED", "an empty body")
def _(w: World) -> Probe:
    return Probe(b"")


@case("whitespace-body", "MALFORMED", "a body of spaces and newlines only")
def _(w: World) -> Probe:
    return Probe(b" \r\n\t \n")


@case("not-xml", "MALFORMED", "plain text instead of XML")
def _(w: World) -> Probe:
    return Probe("Kính gửi: Ủy ban nhân dân tỉnh. This is not XML.\n".encode())


@case("unclosed-element", "MALFORMED", "an element that is never closed")
def _(w: World) -> Probe:
    return Probe(b"<edXML><unclosed></edXML>")


@case("truncated-half", "MALFORMED", "a signed edoc cut in the middle")
def _(w: World) -> Probe:
    body = _signed(w)
    return Probe(body[: len(body) // 2])


@case("truncated-last-byte", "MALFORMED", "a signed edoc missing its final '>'")
def _(w: World) -> Probe:
    return Probe(_signed(w).rstrip()[:-1])


@case("two-roots", "MALFORMED", "a second root element after a signed edoc")
def _(w: World) -> Probe:
    return Probe(_signed(w) + b"<edXML/>")


@case("nul-byte", "MALFORMED", "a NUL byte inside the Subject of a signed edoc")
def _(w: World) -> Probe:
    return Probe(_in_subject(_signed(w), b"\x00"))


@case("invalid-utf8", "MALFORMED", "bytes that are not UTF-8 (0xFF 0xFE) inside the Subject")
def _(w: World) -> Probe:
    return Probe(_in_subject(_signed(w), b"\xff\xfe"))


@case("declared-latin1", "MALFORMED", "a signed edoc re-encoded and declared as ISO-8859-1")
def _(w: World) -> Probe:
    return Probe(etree.tostring(build.tree(_signed(w)).getroottree(), encoding="ISO-8859-1"))


@case(
    "utf16-without-declaration",
    "MALFORMED",
    "a signed edoc in UTF-16 with a byte order mark and no declaration "
    "(was accepted and delivered as UTF-16 before the fix)",
)
def _(w: World) -> Probe:
    return Probe(_signed(w).split(b"?>", 1)[1].decode().encode("utf-16"))


@case("utf16-declared", "MALFORMED", "a signed edoc serialized and declared as UTF-16")
def _(w: World) -> Probe:
    return Probe(etree.tostring(build.tree(_signed(w)).getroottree(), encoding="UTF-16"))


@case("xxe-external-entity", "MALFORMED", "XXE: Subject = &xxe; with xxe SYSTEM file:///etc/passwd")
def _(w: World) -> Probe:
    body = _signed(w)
    body = build.replace_once(body, _subject_text(body), b"&xxe;")
    return Probe(
        build.with_doctype(
            body, '<!DOCTYPE edXML:edXML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        )
    )


@case(
    "xxe-parameter-entity",
    "MALFORMED",
    "XXE through a parameter entity loading a DTD over the network",
)
def _(w: World) -> Probe:
    doctype = '<!DOCTYPE edXML:edXML [<!ENTITY % dtd SYSTEM "http://127.0.0.1:9/evil.dtd"> %dtd;]>'
    return Probe(build.with_doctype(_signed(w), doctype))


@case("billion-laughs", "MALFORMED", "ten levels of entities, each ten times the one below")
def _(w: World) -> Probe:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    ]
    body = _signed(w)
    body = build.replace_once(body, _subject_text(body), b"&lol9;")
    return Probe(build.with_doctype(body, f"<!DOCTYPE edXML:edXML [{''.join(entities)}]>"))


@case("quadratic-blowup", "MALFORMED", "one 50 KB entity referenced 2,000 times")
def _(w: World) -> Probe:
    body = _signed(w)
    body = build.replace_once(body, _subject_text(body), b"&big;" * 2000)
    return Probe(
        build.with_doctype(body, f'<!DOCTYPE edXML:edXML [<!ENTITY big "{"a" * 50_000}">]>')
    )


@case(
    "entity-in-attribute",
    "MALFORMED",
    "an internal entity used in SignatureMethod's Algorithm (libxml2 expands those)",
)
def _(w: World) -> Probe:
    body = _signed(w)
    method = b'"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"'
    body = build.replace_once(body, method, b'"&alg;"')
    doctype = f"<!DOCTYPE edXML:edXML [<!ENTITY alg {method.decode()}>]>"
    return Probe(build.with_doctype(body, doctype))


@case("undeclared-entity", "MALFORMED", "an HTML entity (&nbsp;) in the Subject, never declared")
def _(w: World) -> Probe:
    return Probe(_in_subject(_signed(w), b"&nbsp;"))


@case("deep-nesting", "MALFORMED", "300 nested elements inside the Subject (limit 256)")
def _(w: World) -> Probe:
    return Probe(_in_subject(_signed(w), build.nested(300).encode()))


@case("very-deep-nesting", "MALFORMED", "100,000 nested elements (700 KB), alone")
def _(w: World) -> Probe:
    return Probe(build.nested(100_000).encode())


@case(
    "external-dtd-local-file",
    "SIGNATURE_INVALID",
    "a DOCTYPE naming /etc/passwd as external DTD: never read (it was before the fix, "
    "and the error revealed the file), then refused as a DOCTYPE by the profile",
)
def _(w: World) -> Probe:
    return Probe(build.with_doctype(_signed(w), '<!DOCTYPE edXML:edXML SYSTEM "/etc/passwd">'))


@case("bare-doctype", "SIGNATURE_INVALID", "a DOCTYPE that declares nothing, on a signed edoc")
def _(w: World) -> Probe:
    return Probe(build.with_doctype(_signed(w), "<!DOCTYPE edXML:edXML>"))


@case(
    "doctype-without-entities",
    "SIGNATURE_INVALID",
    "an internal DTD subset declaring elements only, on a signed edoc",
)
def _(w: World) -> Probe:
    return Probe(build.with_doctype(_signed(w), "<!DOCTYPE edXML:edXML [<!ELEMENT x ANY>]>"))


@case("oversized-document", "TOO_LARGE", "a signed edoc 64 KB over max_message_bytes")
def _(w: World) -> Probe:
    return Probe(_signed(w, size=w.max_bytes + 64 * 1024))


@case("oversized-garbage", "TOO_LARGE", "max_message_bytes + 1 bytes of junk")
def _(w: World) -> Probe:
    return Probe(b"<" * (w.max_bytes + 1))


# AMQP properties.


@case("no-message-id", "MALFORMED", "a signed edoc without the message_id property")
def _(w: World) -> Probe:
    return Probe(_signed(w), message_id=None)


@case("unprintable-message-id", "MALFORMED", "a message_id with spaces and non-ASCII")
def _(w: World) -> Probe:
    return Probe(_signed(w), message_id="văn bản số 1")


@case(
    "message-id-too-long",
    "MALFORMED",
    "a 201-character message_id: longer than the hub stores (on PostgreSQL it stalled "
    "the hub before the fix)",
)
def _(w: World) -> Probe:
    return Probe(_signed(w), message_id="m" * 201)


@case("content-type-json", "MALFORMED", "content_type application/json")
def _(w: World) -> Probe:
    return Probe(_signed(w), content_type="application/json")


@case("type-status-for-an-edoc", "SCHEMA_INVALID", "type=status on an edoc body")
def _(w: World) -> Probe:
    return Probe(_signed(w), type="status")


@case("type-missing", "SCHEMA_INVALID", "no type property on an edoc body")
def _(w: World) -> Probe:
    return Probe(_signed(w), type=None)


@case("type-edoc-for-a-status", "SCHEMA_INVALID", "type=edoc on a status body")
def _(w: World) -> Probe:
    about = _doc(w, party=w.recipient, to=[w.sender.code])
    return Probe(w.sender.signer.sign(schemas.to_element(_status(w, w.sender, about))))


@case(
    "hub-receipt-replayed",
    "SCHEMA_INVALID",
    "a genuine hub-signed AxisReceipt published as an edoc",
)
def _(w: World) -> Probe:
    receipt = ReceiptWriter(w.hub_signer).receipt(
        receipt_id="6f1c0d8e-1111-4a4a-9c9c-000000000001",
        message_id="m-1",
        kind="edoc",
        sender=w.sender.code,
        document_id=None,
        sha256="ab" * 32,
        received_at=_now(),
        audit_seq=1,
        chain_hash="cd" * 32,
        delivered=(w.recipient.code,),
    )
    return Probe(receipt)


@case(
    "missing-user-id",
    QUARANTINED,
    "a signed edoc without user_id: nobody to answer (PROTOCOL 4)",
)
def _(w: World) -> Probe:
    return Probe(_signed(w), user_id=None)


# Schema violations.


@case("wrong-namespace", "SCHEMA_INVALID", "a signed edoc with the edXML namespace URI changed")
def _(w: World) -> Probe:
    return Probe(_signed(w).replace(b"QCVN_102_2016", b"QCVN_102_2015"))


@case("no-namespace", "SCHEMA_INVALID", "edXML elements in no namespace")
def _(w: World) -> Probe:
    return Probe(b"<edXML><edXMLEnvelope><edXMLHeader/></edXMLEnvelope></edXML>")


@case("unknown-root", "SCHEMA_INVALID", "an unknown root element in the edXML namespace")
def _(w: World) -> Probe:
    return Probe(b'<Nothing xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016"/>')


def _remove(path: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        element = root.find(path)
        assert element is not None, path
        element.getparent().remove(element)  # type: ignore[union-attr]

    return change


def _set_text(path: str, text: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        element = root.find(path)
        assert element is not None, path
        element.text = text

    return change


@case("missing-subject", "SCHEMA_INVALID", "a correctly signed edoc without Subject")
def _(w: World) -> Probe:
    return Probe(build.sign_edited(w.sender.signer, _doc(w), _remove(SUBJECT)))


@case("priority-out-of-range", "SCHEMA_INVALID", "a correctly signed edoc with Priority 9")
def _(w: World) -> Probe:
    path = f"{MESSAGE_HEADER}/{E}OtherInfo/{E}Priority"
    return Probe(build.sign_edited(w.sender.signer, _doc(w), _set_text(path, "9")))


@case(
    "document-id-of-another-agency",
    ACCEPTED,
    "a signed edoc whose DocumentId begins with another agency's code: real senders do "
    "this (EDXML.md 1.1), and the document is the sender's own (keyed by sender and id)",
)
def _(w: World) -> Probe:
    document = _doc(w)
    claimed = document.document_id.replace(w.sender.code, w.other.code, 1)
    path = f"{MESSAGE_HEADER}/{E}DocumentId"
    body = build.sign_edited(w.sender.signer, document, _set_text(path, claimed))
    return Probe(body, document_id=claimed)


@case(
    "revoke-without-replacement-info",
    "UNKNOWN_DOCUMENT",
    "BussinessDocType 1 (revoke) naming no document revokes its own DocumentId "
    "(EDXML.md 1.2), which the hub never accepted",
)
def _(w: World) -> Probe:
    path = f"{build.HEADER}/{E}TraceHeaderList/{E}Bussiness/{E}BussinessDocType"
    return Probe(build.sign_edited(w.sender.signer, _doc(w), _set_text(path, "1")))


@case("two-signatures", "SCHEMA_INVALID", "a second copy of the ds:Signature in the header")
def _(w: World) -> Probe:
    def duplicate(root: etree._Element) -> None:
        signature = build.signature_of(root)
        signature.addnext(build.tree(etree.tostring(signature)))

    return Probe(build.edit(_signed(w), duplicate))


@case(
    "signature-outside-the-header",
    "SCHEMA_INVALID",
    "the ds:Signature moved from edXMLHeader to the end of the root",
)
def _(w: World) -> Probe:
    def move(root: etree._Element) -> None:
        root.append(build.signature_of(root))

    return Probe(build.edit(_signed(w), move))


@case(
    "status-time-before-year-1",
    "SCHEMA_INVALID",
    "a signed status stamped 0001/01/01 00:30:00 (Vietnamese time), before year 1 in UTC "
    "(was an internal error before the fix)",
)
def _(w: World) -> Probe:
    about = w.accepted(w.recipient, [w.sender.code])
    change = _set_text(f"{MESSAGE_HEADER}/{E}Timestamp", "0001/01/01 00:30:00")
    body = build.sign_edited(w.sender.signer, _status(w, w.sender, about), change)
    return Probe(body, type="status")


# Signature attacks: SIGNATURE_INVALID.


@case("stripped-signature", "SIGNATURE_INVALID", "a signed edoc with its ds:Signature removed")
def _(w: World) -> Probe:
    return Probe(build.strip_signature(_signed(w)))


@case("subject-changed", "SIGNATURE_INVALID", "one word of the Subject changed after signing")
def _(w: World) -> Probe:
    body = _signed(w, subject="Về việc phân bổ dự toán ngân sách")
    return Probe(build.replace_once(body, "phân bổ".encode(), "thu hồi".encode()))


@case("recipient-added", "SIGNATURE_INVALID", "a To/OrganId added after signing")
def _(w: World) -> Probe:
    def add(root: etree._Element) -> None:
        first = root.find(f"{MESSAGE_HEADER}/{E}To")
        assert first is not None
        extra = build.tree(etree.tostring(first))
        extra.find(f"{E}OrganId").text = w.other.code  # type: ignore[union-attr]
        first.addnext(extra)

    return Probe(build.edit(_signed(w), add))


@case("attachment-changed", "SIGNATURE_INVALID", "one base64 character of the attachment changed")
def _(w: World) -> Probe:
    def flip(root: etree._Element) -> None:
        value = next(root.iter(f"{E}ContentTransferEncoded"))
        text = value.text or ""
        middle = len(text) // 2
        value.text = text[:middle] + ("A" if text[middle] != "A" else "B") + text[middle + 1 :]

    return Probe(build.edit(_signed(w, size=8 * 1024), flip))


@case(
    "processing-instruction-injected",
    "SIGNATURE_INVALID",
    "a processing instruction slipped into the signed Subject (C14N keeps PIs)",
)
def _(w: World) -> Probe:
    return Probe(_in_subject(_signed(w), b"<?pi hidden?>"))


@case(
    "comment-injected",
    ACCEPTED,
    "a comment slipped into the signed DocumentId: C14N ignores it and the parser drops "
    "it, so the signature holds and the hub reads the whole DocumentId",
)
def _(w: World) -> Probe:
    document = _doc(w)
    body = w.sender.signer.sign(schemas.to_element(document))
    comma = document.document_id.index(",")
    real = document.document_id.encode()
    split = real[:comma] + b"<!--" + real[comma - 2 : comma] + b"-->" + real[comma:]
    return Probe(build.replace_once(body, real, split), document_id=document.document_id)


@case(
    "signature-transplanted",
    "SIGNATURE_INVALID",
    "the Signature of one signed edoc put on another, unsigned one",
)
def _(w: World) -> Probe:
    return Probe(build.transplant_signature(_signed(w), _unsigned(w)))


@case(
    "wrapped-original-in-object",
    "SIGNATURE_INVALID",
    "signature wrapping: the Subject forged, the original envelope kept in a ds:Object",
)
def _(w: World) -> Probe:
    return Probe(build.wrap_original_in_object(_signed(w), "Về việc chuyển tiền khẩn"))


@case(
    "signature-value-of-another-document",
    "SIGNATURE_INVALID",
    "a valid SignatureValue from another document by the same key",
)
def _(w: World) -> Probe:
    return Probe(build.swap_signature_value(_signed(w), _signed(w)))


@case("reference-uri-fragment", "SIGNATURE_INVALID", 'Reference URI="#header" (XPath/ID tricks)')
def _(w: World) -> Probe:
    return Probe(_forged(w, uri="#header"))


@case("reference-uri-absent", "SIGNATURE_INVALID", "a Reference without URI")
def _(w: World) -> Probe:
    return Probe(_forged(w, uri=None))


@case("xpath-transform", "SIGNATURE_INVALID", "an XPath filter transform before the profile's")
def _(w: World) -> Probe:
    return Probe(_forged(w, transforms=(build.XPATH, build.ENVELOPED, build.EXC_C14N)))


@case("inclusive-c14n-transform", "SIGNATURE_INVALID", "inclusive C14N instead of exclusive")
def _(w: World) -> Probe:
    return Probe(_forged(w, transforms=(build.ENVELOPED, build.INC_C14N)))


@case("enveloped-transform-only", "SIGNATURE_INVALID", "the enveloped transform without C14N")
def _(w: World) -> Probe:
    return Probe(_forged(w, transforms=(build.ENVELOPED,)))


@case(
    "c14n-with-comments",
    "SIGNATURE_INVALID",
    "CanonicalizationMethod exc-c14n WithComments",
)
def _(w: World) -> Probe:
    return Probe(_forged(w, c14n=build.EXC_C14N + "WithComments"))


@case("sha1-digest", "SIGNATURE_INVALID", "DigestMethod SHA-1")
def _(w: World) -> Probe:
    return Probe(_forged(w, digest=build.SHA1))


@case("md5-digest", "SIGNATURE_INVALID", "DigestMethod MD5")
def _(w: World) -> Probe:
    return Probe(_forged(w, digest=build.MD5))


@case(
    "rsa-sha1-signature",
    "SIGNATURE_INVALID",
    "SignatureMethod rsa-sha1, really signed with SHA-1 by a registered RSA key",
    precondition="sender has a registered RSA certificate",
)
def _(w: World) -> Probe:
    return Probe(_forged(w, build.certified(w.sender_rsa), method=build.RSA_SHA1))


@case(
    "rsa-md5-signature",
    "SIGNATURE_INVALID",
    "SignatureMethod rsa-md5 on a registered RSA key",
    precondition="sender has a registered RSA certificate",
)
def _(w: World) -> Probe:
    return Probe(_forged(w, build.certified(w.sender_rsa), method=build.RSA_MD5))


@case("ecdsa-sha1-signature", "SIGNATURE_INVALID", "SignatureMethod ecdsa-sha1")
def _(w: World) -> Probe:
    return Probe(_forged(w, method=build.ECDSA_SHA1))


@case(
    "hmac-keyed-with-the-public-key",
    "SIGNATURE_INVALID",
    "HMAC confusion: SignatureMethod hmac-sha256 with the certificate's public key as secret",
)
def _(w: World) -> Probe:
    return Probe(build.hmac_confused(_signed(w), w.sender.signer))


@case(
    "method-does-not-match-key",
    "SIGNATURE_INVALID",
    "SignatureMethod rsa-sha256 with an EC certificate",
)
def _(w: World) -> Probe:
    return Probe(_forged(w, method=build.RSA_SHA256))


@case("extra-reference", "SIGNATURE_INVALID", "a second Reference in SignedInfo, SignedInfo signed")
def _(w: World) -> Probe:
    def duplicate(signed_info: etree._Element) -> None:
        reference = signed_info.find(f"{DS}Reference")
        assert reference is not None
        copy = build.tree(etree.tostring(reference))
        copy.set("URI", "#other")
        reference.addnext(copy)

    return Probe(build.resign_signed_info(_signed(w), w.sender.signer.key, duplicate))


@case(
    "key-substitution",
    "SIGNATURE_INVALID",
    "signed with an attacker's key, the sender's registered certificate in KeyInfo",
)
def _(w: World) -> Probe:
    attacker = CertifiedKey(generate_key("ec"), w.sender.signer.certificate)
    return Probe(build.forge(_unsigned(w), attacker))


@case(
    "keyinfo-certificate-of-another-agency",
    "SIGNATURE_INVALID",
    "signed by the sender, KeyInfo holding another agency's registered certificate",
)
def _(w: World) -> Probe:
    other = base64.b64encode(w.other.signer.certificate.public_bytes(Encoding.DER)).decode()

    def swap(root: etree._Element) -> None:
        next(root.iter(f"{DS}X509Certificate")).text = other

    return Probe(build.edit(_signed(w), swap))


@case(
    "certificate-unknown-key-algorithm",
    "SIGNATURE_INVALID",
    "the sender's certificate with its key algorithm OID changed to an unknown one "
    "(escaped the verifier as UnsupportedAlgorithm before the fix)",
)
def _(w: World) -> Probe:
    der = w.sender.signer.certificate.public_bytes(Encoding.DER)
    ec_public_key = bytes.fromhex("06072a8648ce3d0201")
    unknown = build.replace_once(der, ec_public_key, bytes.fromhex("06072a8648ce3d0209"))

    def swap(root: etree._Element) -> None:
        next(root.iter(f"{DS}X509Certificate")).text = base64.b64encode(unknown).decode()

    return Probe(build.edit(_signed(w), swap))


@case(
    "certificate-duplicate-extension",
    "CERT_UNTRUSTED",
    "the sender's certificate with two keyUsage extensions (escaped the verifier as "
    "DuplicateExtension before the fix)",
)
def _(w: World) -> Probe:
    der = w.sender.signer.certificate.public_bytes(Encoding.DER)
    subject_key_identifier, key_usage = bytes.fromhex("0603551d0e"), bytes.fromhex("0603551d0f")
    twice = build.replace_once(der, subject_key_identifier, key_usage)

    def swap(root: etree._Element) -> None:
        next(root.iter(f"{DS}X509Certificate")).text = base64.b64encode(twice).decode()

    return Probe(build.edit(_signed(w), swap))


@case(
    "certificate-x509-version-4",
    "SIGNATURE_INVALID",
    "the sender's certificate claiming X.509 version 4 (escaped the verifier as "
    "InvalidVersion before the fix)",
)
def _(w: World) -> Probe:
    der = w.sender.signer.certificate.public_bytes(Encoding.DER)
    v4 = build.replace_once(der, bytes.fromhex("a003020102"), bytes.fromhex("a003020103"))

    def swap(root: etree._Element) -> None:
        next(root.iter(f"{DS}X509Certificate")).text = base64.b64encode(v4).decode()

    return Probe(build.edit(_signed(w), swap))


@case(
    "relative-namespace-in-signature",
    "SIGNATURE_INVALID",
    "an element in a namespace named by a relative URI inside ds:Signature, which the "
    "XSD skips and C14N cannot render (escaped the verifier as C14NError before the fix)",
)
def _(w: World) -> Probe:
    extra = b'<r:x xmlns:r="relative/uri"/></ds:KeyInfo>'
    return Probe(build.replace_once(_signed(w), b"</ds:KeyInfo>", extra))


@case(
    "non-ascii-digest-value",
    "SIGNATURE_INVALID",
    "a DigestValue of 44 bytes that are not ASCII (escaped the verifier as "
    "UnicodeDecodeError before the fix)",
)
def _(w: World) -> Probe:
    body = _signed(w)
    start = body.index(b"<ds:DigestValue>") + len(b"<ds:DigestValue>")
    end = body.index(b"</ds:DigestValue>")
    return Probe(body[:start] + "é".encode() * 22 + body[end:])


@case("keyinfo-removed", "SIGNATURE_INVALID", "a signature without KeyInfo")
def _(w: World) -> Probe:
    def remove(root: etree._Element) -> None:
        key_info = next(root.iter(f"{DS}KeyInfo"))
        key_info.getparent().remove(key_info)  # type: ignore[union-attr]

    return Probe(build.edit(_signed(w), remove))


@case(
    "certificate-garbage", "SIGNATURE_INVALID", "X509Certificate holding base64 of no certificate"
)
def _(w: World) -> Probe:
    def garbage(root: etree._Element) -> None:
        next(root.iter(f"{DS}X509Certificate")).text = "AAAA"

    return Probe(build.edit(_signed(w), garbage))


# Certificate failures.


@case("cert-expired", "CERT_EXPIRED", "signed with a certificate that expired yesterday")
def _(w: World) -> Probe:
    now = _now()
    old = _leaf(w, not_before=now - timedelta(days=400), not_after=now - timedelta(days=1))
    return Probe(_signed(w, Signer(old.key, old.certificate)))


@case("cert-not-yet-valid", "CERT_EXPIRED", "signed with a certificate valid from tomorrow")
def _(w: World) -> Probe:
    future = _leaf(w, not_before=_now() + timedelta(days=1))
    return Probe(_signed(w, Signer(future.key, future.certificate)))


@case(
    "cert-revoked-by-crl",
    "CERT_REVOKED",
    "signed with a certificate on the CA's CRL",
    precondition="the hub loads a CRL listing World.crl_revoked",
)
def _(w: World) -> Probe:
    return Probe(_signed(w, w.crl_revoked))


@case(
    "cert-revoked-in-registry",
    "CERT_REVOKED",
    "signed with a certificate of the sender that the registry revoked",
    precondition="World.registry_revoked is registered to the sender, then revoked",
)
def _(w: World) -> Probe:
    return Probe(_signed(w, w.registry_revoked))


@case("cert-unknown-ca", "CERT_UNTRUSTED", "signed with a certificate from another CA")
def _(w: World) -> Probe:
    stranger = make_leaf(w.sender.code, make_ca("Elsewhere CA"))
    return Probe(_signed(w, Signer(stranger.key, stranger.certificate)))


@case(
    "cert-forged-issuer",
    "CERT_UNTRUSTED",
    "a self-signed certificate naming the hub's CA as issuer",
)
def _(w: World) -> Probe:
    key = generate_key("ec")
    forged = make_leaf(w.sender.code, CertifiedKey(key, w.ca.certificate), key=key)
    return Probe(_signed(w, Signer(forged.key, forged.certificate)))


@case(
    "cert-wrong-key-usage",
    "CERT_UNTRUSTED",
    "a certificate of the CA without digitalSignature or nonRepudiation",
)
def _(w: World) -> Probe:
    usage = KeyUsageFlags(digital_signature=False, non_repudiation=False)
    return Probe(_forged(w, _leaf(w, key_usage=usage)))


@case("cert-of-the-ca", "CERT_UNTRUSTED", "signed with the CA certificate itself")
def _(w: World) -> Probe:
    return Probe(_forged(w, w.ca))


@case("weak-rsa-1024", "CERT_UNTRUSTED", "an RSA-1024 certificate issued by the CA")
def _(w: World) -> Probe:
    return Probe(_forged(w, _leaf(w, key=generate_key("rsa", rsa_bits=1024))))


@case("ec-p384", "CERT_UNTRUSTED", "an EC P-384 certificate issued by the CA (only P-256)")
def _(w: World) -> Probe:
    return Probe(_forged(w, _leaf(w, key=ec.generate_private_key(ec.SECP384R1()))))


def _with_reencoded_certificate(w: World, signer: Signer) -> bytes:
    reencoded = base64.b64encode(build.reencoded_certificate(signer.certificate)).decode()

    def swap(root: etree._Element) -> None:
        next(root.iter(f"{DS}X509Certificate")).text = reencoded

    return build.edit(_signed(w, signer), swap)


@case(
    "certificate-re-encoded",
    "CERT_NOT_REGISTERED",
    "the sender's registered certificate re-encoded by anyone (CA's ECDSA (r, s) as "
    "(r, n - s)): the same signer to the verifier, another fingerprint to the registry",
)
def _(w: World) -> Probe:
    return Probe(_with_reencoded_certificate(w, w.sender.signer))


@case(
    "revoked-certificate-re-encoded",
    "CERT_NOT_REGISTERED",
    "a certificate revoked in the registry, re-encoded to dodge the revocation",
    precondition="World.registry_revoked is registered to the sender, then revoked",
)
def _(w: World) -> Probe:
    return Probe(_with_reencoded_certificate(w, w.registry_revoked))


@case("cert-not-registered", "CERT_NOT_REGISTERED", "a certificate of the CA the registry lacks")
def _(w: World) -> Probe:
    stray = _leaf(w)
    return Probe(_signed(w, Signer(stray.key, stray.certificate)))


@case(
    "cert-of-another-agency",
    "SENDER_MISMATCH",
    "the sender's document signed with another agency's registered certificate",
)
def _(w: World) -> Probe:
    return Probe(_signed(w, w.other.signer))


# Who may send what: the registry and the hub's memory decide.


@case("spoofed-from", "SENDER_MISMATCH", "From/OrganId = another agency, signed by the sender")
def _(w: World) -> Probe:
    return Probe(_signed(w, party=w.other))


@case(
    "replayed-document-of-another-agency",
    "SENDER_MISMATCH",
    "another agency's validly signed edoc, published by the sender",
)
def _(w: World) -> Probe:
    return Probe(_signed(w, w.other.signer, party=w.other))


@case("status-spoofed-from", "SENDER_MISMATCH", "a status whose From is another agency")
def _(w: World) -> Probe:
    about = w.accepted(w.recipient, [w.sender.code])
    status = _status(w, w.other, about)
    return Probe(w.sender.signer.sign(schemas.to_element(status)), type="status")


@case(
    "suspended-sender",
    "SENDER_SUSPENDED",
    "a valid edoc from a suspended agency",
    precondition="World.suspended_sender is suspended",
)
def _(w: World) -> Probe:
    party = w.suspended_sender
    return Probe(_signed(w, party.signer, party=party), publisher=party)


@case("unknown-recipient", "UNKNOWN_RECIPIENT", "To/OrganId 000.00.00.Z99, registered nowhere")
def _(w: World) -> Probe:
    return Probe(_signed(w, to=["000.00.00.Z99"]))


@case("unknown-group", "UNKNOWN_RECIPIENT", "To/OrganId @no-such-group")
def _(w: World) -> Probe:
    return Probe(_signed(w, to=["@no-such-group"]))


@case(
    "suspended-recipient",
    "RECIPIENT_SUSPENDED",
    "a suspended agency named directly in To",
    precondition="World.suspended_recipient is suspended",
)
def _(w: World) -> Probe:
    return Probe(_signed(w, to=[w.suspended_recipient.code]))


@case(
    "document-id-conflict",
    "DUPLICATE_CONFLICT",
    "an accepted DocumentId again, with another Subject",
    precondition="the original is accepted first",
)
def _(w: World) -> Probe:
    original = w.accepted(w.sender, [w.recipient.code])
    changed = dataclasses.replace(original, subject="Về việc một nội dung khác")
    return Probe(w.sender.signer.sign(schemas.to_element(changed)))


@case(
    "revoke-of-another-agencys-document",
    "NOT_ORIGINAL_SENDER",
    "a revoke naming a document another agency sent",
    precondition="the other agency's document is accepted first",
)
def _(w: World) -> Probe:
    original = w.accepted(w.other, [w.sender.code])
    business = schemas.Business(schemas.BusinessDocType.REVOKE, "Thu hồi", original.document_id)
    return Probe(_signed(w, business=business))


@case(
    "replace-of-another-agencys-document",
    "NOT_ORIGINAL_SENDER",
    "a replace naming a document another agency sent",
    precondition="the other agency's document is accepted first",
)
def _(w: World) -> Probe:
    original = w.accepted(w.other, [w.sender.code])
    business = schemas.Business(
        schemas.BusinessDocType.REPLACE,
        "Thay thế",
        replacements=[schemas.Replacement(original.document_id)],
    )
    return Probe(_signed(w, business=business))


@case("revoke-of-unknown-document", "UNKNOWN_DOCUMENT", "a revoke naming a DocumentId never sent")
def _(w: World) -> Probe:
    ghost = _doc(w).document_id
    business = schemas.Business(schemas.BusinessDocType.REVOKE, None, ghost)
    return Probe(_signed(w, business=business))


@case(
    "status-from-non-recipient",
    "NOT_A_RECIPIENT",
    "a status on a document the sender did not receive",
    precondition="the other agency's document to the recipient is accepted first",
)
def _(w: World) -> Probe:
    about = w.accepted(w.other, [w.recipient.code])
    status = _status(w, w.sender, about, code=schemas.StatusCode.COMPLETED)
    return Probe(w.sender.signer.sign(schemas.to_element(status)), type="status")


@case("status-for-unknown-document", "UNKNOWN_DOCUMENT", "a status on a document never sent")
def _(w: World) -> Probe:
    never_sent = _doc(w, party=w.recipient, to=[w.sender.code])
    status = _status(w, w.sender, never_sent)
    return Probe(w.sender.signer.sign(schemas.to_element(status)), type="status")


def shuffled(seed: int) -> list[Case]:
    """The corpus in a reproducible random order (for the run under load)."""
    cases = list(CASES)
    random.Random(seed).shuffle(cases)
    return cases
