"""What the fuzzers feed the hub, and the oracle that judges a verdict.

- :data:`VALID_DOCUMENTS`: signed documents of every kind (RSA and EC edocs, a
  status, a hub receipt), made once with an in-memory PKI;
- :func:`verdict`: what the verifier says about bytes, after the parser and the schema;
- :func:`signed_content`: the oracle. The enveloped-signature transform then
  exclusive C14N, computed the slow, obvious way (copy the tree, drop the Signature,
  canonicalize), independently of :mod:`signing.document`'s fast cut;
- strategies: :func:`xml_like` text and :func:`mutated` documents.
"""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from functools import cache

from hypothesis import strategies as st
from lxml import etree

import schemas
from axis.receipts import ReceiptWriter
from axis.rejections import Rejection
from schemas.samples import sample_edoc, sample_status
from schemas.xml import parse
from signing import Signer, TrustStore, VerifiedSignature, Verifier
from signing.pki import generate_key, make_ca, make_leaf
from tests.corpus.build import DS, LENIENT, serialize

NOW = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
"""Every document is made and verified at this fixed time."""
_START = datetime(2026, 1, 1, tzinfo=UTC)
G22, H41 = "000.00.00.G22", "000.00.00.H41"
MAX_BYTES = 256 * 1024

CA = make_ca("Axis Fuzz CA", not_before=_START)


def _signer(code: str, algo: str) -> Signer:
    leaf = make_leaf(code, CA, key=generate_key(algo), algo=algo, not_before=_START, days=3650)
    return Signer(leaf.key, leaf.certificate)


SIGNERS = {"ec": _signer(G22, "ec"), "rsa": _signer(G22, "rsa"), "status": _signer(H41, "ec")}
TRUST = TrustStore([CA.certificate])


def _documents() -> dict[str, bytes]:
    rng = random.Random(7)
    edoc = sample_edoc(G22, [H41, "@provinces"], document_number=101, rng=rng, now=NOW, size=3000)
    large = sample_edoc(G22, [H41], document_number=102, rng=rng, now=NOW, size=40_000)
    hub = ReceiptWriter(_signer("axis-hub", "ec"))
    return {
        "edoc": SIGNERS["ec"].sign(schemas.to_element(edoc)),
        "edoc-rsa": SIGNERS["rsa"].sign(schemas.to_element(edoc)),
        # Attachment text above 16 KB takes the verifier's own canonicalization path.
        "edoc-large": SIGNERS["ec"].sign(schemas.to_element(large)),
        "status": SIGNERS["status"].sign(
            schemas.to_element(sample_status(H41, edoc, now=NOW, description="Đã đến"))
        ),
        "receipt": hub.receipt(
            receipt_id="6f1c0d8e-1111-4a4a-9c9c-000000000001",
            message_id="m-1",
            kind="edoc",
            sender=G22,
            document_id=edoc.document_id,
            sha256="ab" * 32,
            received_at=NOW,
            audit_seq=7,
            chain_hash="cd" * 32,
            delivered=(H41,),
        ),
    }


VALID_DOCUMENTS: dict[str, bytes] = _documents()
"""Kind (``edoc``, ``edoc-rsa``, ``edoc-large``, ``status``, ``receipt``) → a signed document."""


@cache
def verifier() -> Verifier:
    """One verifier, caches included, as the hub keeps one."""
    return Verifier(TRUST)


def verify(body: bytes) -> VerifiedSignature:
    """parse → validate → verify, as the hub does (Rejection on any failure)."""
    root = parse(body, max_bytes=MAX_BYTES)
    schemas.validate(root)
    return verifier().verify(root, at=NOW)


def verdict(body: bytes) -> str:
    """``"VALID"`` or the rejection code; any other exception propagates."""
    try:
        verify(body)
    except Rejection as exc:
        return exc.code
    return "VALID"


def signed_content(body: bytes) -> tuple[bytes, bytes] | None:
    """(document without its Signature, SignedInfo), both in exclusive C14N; ``None``
    unless the body parses, holds exactly one ds:Signature and can be canonicalized."""
    try:
        root = etree.fromstring(body, LENIENT)
    except (etree.XMLSyntaxError, ValueError):
        return None
    signatures = list(root.iter(f"{DS}Signature"))
    if len(signatures) != 1:
        return None
    signed_info = signatures[0].find(f"{DS}SignedInfo")
    try:
        info = b"" if signed_info is None else _c14n(signed_info)
    except etree.C14NError:
        return None
    document = copy.deepcopy(root.getroottree())
    [signature] = list(document.getroot().iter(f"{DS}Signature"))
    parent = signature.getparent()
    assert parent is not None
    tail, previous = signature.tail or "", signature.getprevious()
    parent.remove(signature)
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    try:
        return _c14n(document), info
    except etree.C14NError:  # e.g. a namespace named by a relative URI
        return None


def _c14n(node: etree._Element | etree._ElementTree) -> bytes:
    return etree.tostring(node, method="c14n", exclusive=True, with_comments=False)


# Strategies


_NAMES = st.sampled_from(
    ["a", "edXML", "edXML:edXML", "ds:Signature", "Subject", "x:y", "Status", "n"]
)
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
_FRAGMENTS = st.sampled_from(
    [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<?xml version="1.1"?>',
        '<?xml version="1.0" encoding="ISO-8859-1"?>',
        "<!DOCTYPE a>",
        '<!DOCTYPE a [<!ENTITY e "x">]>',
        "<!DOCTYPE a [<!ENTITY % p \"<!ENTITY q 'y'>\"> %p;]>",
        '<!DOCTYPE a SYSTEM "file:///etc/passwd">',
        '<!DOCTYPE a PUBLIC "-//A//B" "http://127.0.0.1:1/a.dtd">',
        '<!ENTITY lol "lol">',
        "&e;",
        "&lol;",
        "&#0;",
        "&#x10FFFF;",
        "&#xD800;",
        "&amp;",
        "<![CDATA[<x>]]>",
        "<!-- c -->",
        "<?pi Signature?>",
        '<edXML:edXML xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016">',
        "</edXML:edXML>",
        '<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">',
        "</ds:Signature>",
        '<Status xmlns="http://www.mic.gov.vn/TBT/QCVN_102_2016">',
        "</Status>",
        '<AxisReceipt xmlns="urn:axis:hub:1">',
        "</AxisReceipt>",
        ' xmlns="urn:x"',
        ' a="1" a="2"',
        "\r\n",
        "\x00",
        "\ufeff",
        "]]>",
        "<",
        ">",
        "/>",
    ]
)


@st.composite
def _element(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(_NAMES)
    attributes = draw(st.lists(st.tuples(_NAMES, _TEXT), max_size=2))
    attrs = "".join(f' {k}="{v}"' for k, v in attributes)
    parts = draw(
        st.lists(
            st.one_of(_TEXT, _FRAGMENTS, _element(depth + 1) if depth < 4 else _TEXT), max_size=4
        )
    )
    return f"<{name}{attrs}>{''.join(parts)}</{name}>"


@st.composite
def xml_like(draw: st.DrawFn) -> bytes:
    """Text that looks like XML, with the constructs attacks are made of, as bytes."""
    parts = draw(st.lists(st.one_of(_FRAGMENTS, _element(), _TEXT), min_size=1, max_size=6))
    depth = draw(st.sampled_from([0, 0, 0, 255, 257, 5000]))
    text = "".join(parts)
    if depth:
        text = "<a>" * depth + text + "</a>" * depth
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "latin-1"]))
    return text.encode(encoding, errors="replace")


_SLICES = [
    b"<edXML:Subject>",
    b"</edXML:Subject>",
    b"<edXML:To>",
    b"<edXML:OrganId>",
    b"<ds:SignedInfo>",
    b"<ds:Reference",
    b"<ds:DigestValue>",
    b"<ds:SignatureValue>",
    b"<ds:X509Certificate>",
    b"<ds:KeyInfo>",
    b'Algorithm="',
    b'URI=""',
    b"</ds:Signature>",
    b"<edXML:Bussiness>",
    b"<edXML:ContentTransferEncoded>",
]
"""Places worth aiming at: a random offset mostly lands in base64."""

_INSERTS = st.sampled_from(
    [
        b" ",
        b"\n",
        b"<!-- -->",
        b"<?pi x?>",
        b"<![CDATA[x]]>",
        b"&#x20;",
        b"&amp;",
        b"x",
        b"</a>",
        b"<a>",
        b"\xc3",
        b"\x00",
        b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/>',
        b'<Signature xmlns="urn:x"/>',
        b"<?Signature?>",
    ]
) | st.binary(min_size=1, max_size=8)


_ALNUM = b"ABCXYZabcxyz0189+/="

_BOUNDARY_VALUES = st.sampled_from(
    [
        "0001-01-01T00:30:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:59:59.999999Z",
        "2026-02-29",
        "2024-02-29",
        "0001-01-01",
        "9999-12-31",
        "2026-11-20T24:00:00Z",
        "2026-11-20T23:59:60Z",
        "2026-11-20T01:00:00+14:00",
        "2026-11-20T01:00:00-14:01",
        "0",
        "-0",
        "+1",
        " 1 ",
        "4",
        "5",
        "99",
        "2147483648",
        "1e3",
        "\u0663",
        "",
        " ",
        "@provinces",
        "@no-such-group",
        "000.00.00.G22",
        "000.00.00.H41",
        "000.00.00.G22,2026/11/20,101/VPCP-KSTT",
        "000.00.00.G22,2026/02/30,101/VPCP-KSTT",
        "000.00.00.G22,2026/11/20,1\u0663/Q\u0110-UBND",
        "x" * 2001,
        "base64",
        "AAAA",
        "====",
        "m" * 300,
        "a|b",
    ]
)
"""Values at the edges of what the XSD admits and Python converts."""


@st.composite
def _position(draw: st.DrawFn, body: bytes) -> int:
    """An offset in ``body``: anywhere, or just after one of :data:`_SLICES`."""
    anchors = [body.find(s) + len(s) for s in _SLICES if s in body]
    if anchors and draw(st.booleans()):
        return draw(st.sampled_from(anchors)) + draw(st.integers(-3, 3))
    return draw(st.integers(0, len(body)))


@st.composite
def _byte_mutation(draw: st.DrawFn, body: bytes) -> bytes:
    at = min(max(draw(_position(body)), 0), len(body) - 1)
    kind = draw(
        st.sampled_from(["letter", "letter", "flip", "insert", "delete", "truncate", "duplicate"])
    )
    if kind == "letter":
        # Another letter or digit in place of one: the document mostly stays well-formed.
        at = next((i for i in range(at, len(body)) if chr(body[i]).isalnum()), at)
        if not chr(body[at]).isalnum():
            return body
        other = draw(st.sampled_from([c for c in _ALNUM if c != body[at]]))
        return body[:at] + bytes([other]) + body[at + 1 :]
    if kind == "flip":
        return body[:at] + bytes([body[at] ^ draw(st.integers(1, 255))]) + body[at + 1 :]
    if kind == "insert":
        return body[:at] + draw(_INSERTS) + body[at:]
    if kind == "delete":
        return body[:at] + body[at + draw(st.integers(1, 16)) :]
    if kind == "truncate":
        return body[:at]
    end = min(len(body), at + draw(st.integers(1, 200)))
    where = draw(st.integers(0, len(body)))
    return body[:where] + body[at:end] + body[where:]


@st.composite
def _tree_mutation(draw: st.DrawFn, body: bytes) -> bytes:
    root = etree.fromstring(body, LENIENT)
    elements = list(root.iter(etree.Element))
    target = draw(st.sampled_from(elements))
    kind = draw(
        st.sampled_from(
            [
                "duplicate",
                "remove",
                "text",
                "value",
                "value",
                "attribute",
                "swap",
                "comment",
                "pi",
                "tail",
                "cdata",
            ]
        )
    )
    parent = target.getparent()
    if kind == "duplicate" and parent is not None:
        parent.insert(parent.index(target) + draw(st.integers(0, 1)), copy.deepcopy(target))
    elif kind == "remove" and parent is not None:
        parent.remove(target)
    elif kind == "value" and len(target) == 0:
        target.text = draw(_BOUNDARY_VALUES)
    elif kind == "text":
        target.text = draw(st.sampled_from(["", " ", (target.text or "") + " ", "X"])) or None
    elif kind == "attribute":
        name = draw(st.sampled_from(["Algorithm", "URI", "Id", "{urn:x}a", "x"]))
        target.set(
            name, draw(st.sampled_from(["", "#x", "http://www.w3.org/2000/09/xmldsig#sha1"]))
        )
    elif kind == "swap" and parent is not None and len(parent) > 1:
        index = parent.index(target)
        other = draw(st.integers(0, len(parent) - 1))
        if other != index:
            moved = parent[other]
            parent.insert(index, moved)
    elif kind == "comment":
        target.insert(draw(st.integers(0, len(target))), etree.Comment(" injected "))
    elif kind == "pi":
        target.insert(draw(st.integers(0, len(target))), etree.ProcessingInstruction("x", "y"))
    elif kind == "tail":
        target.tail = (target.tail or "") + draw(st.sampled_from([" ", "\n", "x"]))
    elif kind == "cdata" and target.text and len(target) == 0:
        target.text = etree.CDATA(target.text)
    return serialize(root)


def _outside_whitespace(body: bytes) -> bytes:
    """Whitespace before the root and after it: outside the document, so neutral."""
    declaration, rest = body.split(b"?>", 1)
    return declaration + b"?>\n\n  " + rest + b"\n \n"


@st.composite
def mutated(draw: st.DrawFn, documents: dict[str, bytes]) -> bytes:
    """One of ``documents``, changed by one to three byte or tree mutations."""
    body = documents[draw(st.sampled_from(sorted(documents)))]
    for _ in range(draw(st.integers(1, 3))):
        choice = draw(st.sampled_from(["bytes", "bytes", "tree", "tree", "outside"]))
        try:
            if choice == "tree":
                body = draw(_tree_mutation(body))
            elif choice == "outside" and body.startswith(b"<?xml"):
                body = _outside_whitespace(body)
            elif body:
                body = draw(_byte_mutation(body))
        except (etree.XMLSyntaxError, ValueError):
            break  # an earlier byte mutation made it unparsable: the bytes are the case
    return body
