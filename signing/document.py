"""Where the signature goes in each kind of document, and the enveloped digest input.

Shared by signing and verification so both sides agree byte for byte. Elements
are matched by namespace URI (Clark notation), never by prefix: real edXML files
use the default namespace, the ``edXML:`` prefix, or both, and re-declare it on
inner elements.

Two canonicalizations: exclusive C14N (strict profile) and inclusive C14N 1.0
(legacy profile), each of a whole document or, for SignedInfo, of one element's
subtree as a document subset; see :func:`canonicalize_c14n10` for what inclusive
C14N 1.0 takes from the ancestors.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from copy import deepcopy
from dataclasses import dataclass

from lxml import etree

from axis.rejections import Malformed, SignatureInvalid
from signing.profile import EDXML_NS, XML_NS, CanonicalizationMethod, DigestMethod, ds, edxml

_EDXML_NS_TAG = f"{{{EDXML_NS}}}"
_EDXML = edxml("edXML")
_ENVELOPE = edxml("edXMLEnvelope")
_HEADER = edxml("edXMLHeader")
_SIGNATURE = ds("Signature")


def expected_parent(root: etree._Element) -> etree._Element:
    """The element whose last child the Signature must be.

    ``edXML/edXMLEnvelope/edXMLHeader`` for an ``edXML`` root (documents and
    statuses alike); the root itself for anything else (the hub's own messages,
    ``urn:axis:hub:1``). ``Malformed`` for an ``edXML`` root without a header.
    """
    if root.tag != _EDXML:
        return root
    envelope = root.find(_ENVELOPE)
    header = envelope.find(_HEADER) if envelope is not None else None
    if header is None:
        raise Malformed(f"an edXML document ({EDXML_NS}) needs edXMLEnvelope/edXMLHeader")
    return header


def is_required_place(signature: etree._Element, root: etree._Element) -> bool:
    """Whether ``signature`` is the last child element of where the profile puts it."""
    parent = signature.getparent()
    if parent is None:
        return False
    if root.tag == _EDXML:
        envelope = parent.getparent()
        if (
            parent.tag != _HEADER
            or envelope is None
            or envelope.tag != _ENVELOPE
            or envelope.getparent() is not root
        ):
            return False
    elif parent is not root:
        return False
    # Comments and processing instructions may follow; they are not children elements.
    sibling = signature.getnext()
    while sibling is not None:
        if isinstance(sibling.tag, str):
            return False
        sibling = sibling.getnext()
    return True


def canonicalize(
    tree: etree._ElementTree | etree._Element,
    inclusive_prefixes: Sequence[str] | None = None,
) -> bytes:
    """Exclusive C14N without comments of a whole document (tree) or of one element subtree.

    ``SignatureInvalid`` for a tree C14N cannot render, such as one using a namespace
    whose name is a relative URI (``xmlns:x="a/b"``): nothing can be signed there.
    """
    try:
        return etree.tostring(
            tree,
            method="c14n",
            exclusive=True,
            with_comments=False,
            inclusive_ns_prefixes=list(inclusive_prefixes) if inclusive_prefixes else None,
        )
    except etree.C14NError as exc:
        raise SignatureInvalid(f"the document cannot be canonicalized: {exc}") from None


_STANDALONE = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, remove_comments=False
)
"""Re-reads XML that lxml serialized here from an already parsed tree."""
_XML_ATTRIBUTE = f"{{{XML_NS}}}"


def _c14n10(tree: etree._ElementTree) -> bytes:
    try:
        return etree.tostring(tree, method="c14n", exclusive=False, with_comments=False)
    except etree.C14NError as exc:
        raise SignatureInvalid(f"the document cannot be canonicalized: {exc}") from None


def canonicalize_c14n10(tree: etree._ElementTree | etree._Element) -> bytes:
    """Inclusive C14N 1.0 without comments of a whole document (tree) or of one element.

    An element is canonicalized as XML-DSig canonicalizes SignedInfo: as the
    document subset of it and its descendants, so by C14N 1.0 section 2.4 it
    carries, besides its own, every namespace declaration in scope (the edXML
    root's ``xmlns``/``xmlns:edXML`` become part of the signed bytes) and the
    ``xml:*`` attributes it inherits from its nearest ancestors that have them
    (``xml:lang``, ``xml:space``, ``xml:base``…; C14N 1.0, unlike 1.1, inherits
    them all). libxml2's C14N of a node set, and so xmlsec1, does exactly that.

    lxml's own C14N of a non-root element cannot be used: in inclusive mode it
    walks the original ancestors for the element's descendants and emits a
    spurious ``xmlns=""`` on them when the default namespace is re-declared
    between the root and the element (``<edXML xmlns="Q">`` holding ``<Signature
    xmlns="…xmldsig#">``, as the SDK writes). So the element is serialized
    standalone (lxml declares every in-scope namespace on it, the nearest
    declaration of each prefix winning), given the inherited ``xml:*``
    attributes, re-parsed and canonicalized as a whole document: what libxml2
    renders for a document is exact, and nothing in the subset changes on the
    way. ``SignatureInvalid`` where C14N fails, as :func:`canonicalize`.
    """
    if isinstance(tree, etree._ElementTree):
        return _c14n10(tree)
    standalone = etree.fromstring(etree.tostring(tree, with_tail=False), _STANDALONE)
    own = tree.attrib
    inherited: dict[str, str] = {}
    for ancestor in tree.iterancestors():
        for name, value in ancestor.attrib.items():
            if name.startswith(_XML_ATTRIBUTE) and name not in inherited and name not in own:
                inherited[name] = value
    for name, value in inherited.items():
        standalone.set(name, value)
    return _c14n10(standalone.getroottree())


def _canonicalize_document(
    tree: etree._ElementTree,
    inclusive_prefixes: Sequence[str] | None,
    method: CanonicalizationMethod,
) -> bytes:
    if method is CanonicalizationMethod.C14N_10:
        return canonicalize_c14n10(tree)
    return canonicalize(tree, inclusive_prefixes)


_HASHES = {DigestMethod.SHA256: hashlib.sha256, DigestMethod.SHA1: hashlib.sha1}


@dataclass(frozen=True)
class SignatureScan:
    """One walk over a document: what the verifier and the enveloped transform need."""

    signatures: list[etree._Element]
    """Every ``ds:Signature``, in document order."""
    same_name: list[etree._Element]
    """Every element named ``Signature``, in any namespace (ds ones included)."""
    pi_mentions_signature: bool
    """A processing instruction anywhere contains "Signature"."""


def scan(root: etree._Element) -> SignatureScan:
    """Find the signatures, and whatever could make cutting one out ambiguous."""
    same_name: list[etree._Element] = []
    pi_mentions = False
    for node in root.iter("{*}Signature", etree.ProcessingInstruction):
        if isinstance(node.tag, str):
            same_name.append(node)
        elif "Signature" in f"{node.target} {node.text or ''}":
            pi_mentions = True
    for pi in (
        *root.itersiblings(etree.ProcessingInstruction, preceding=True),
        *root.itersiblings(etree.ProcessingInstruction),
    ):
        if "Signature" in f"{pi.target} {pi.text or ''}":
            pi_mentions = True
    signatures = [node for node in same_name if node.tag == _SIGNATURE]
    return SignatureScan(signatures, same_name, pi_mentions)


def _span(
    canonical: bytes, signature: etree._Element, found: SignatureScan
) -> tuple[int, int] | None:
    """Where ``signature`` is serialized in the canonical form of its document, if unambiguous.

    In canonical XML every ``<`` of text or attribute values is escaped and comments
    are gone, so a literal ``<q:Signature`` can only come from an element with that
    qualified name, or from a processing instruction. With no other such element and
    no PI mentioning ``Signature``, the first start tag and the first end tag after it
    delimit exactly this element. Otherwise, ``None``.
    """
    prefix = signature.prefix
    if found.pi_mentions_signature or any(
        other is not signature and other.prefix == prefix for other in found.same_name
    ):
        return None
    qname = (f"{prefix}:Signature" if prefix else "Signature").encode()
    start = canonical.find(b"<" + qname)
    while start >= 0 and canonical[start + len(qname) + 1 : start + len(qname) + 2] not in b" >":
        start = canonical.find(b"<" + qname, start + 1)
    if start < 0:
        return None
    close = b"</" + qname + b">"
    end = canonical.find(close, start)
    if end < 0:
        return None
    return start, end + len(close)


_ATTACHMENT_PATH = f"{_EDXML_NS_TAG}AttachmentEncoded/{_EDXML_NS_TAG}Attachment/*"
"""Where an edoc's bulk is: the base64 content of its attachments."""
_BULKY = 16 * 1024
"""Text of at least this many characters is canonicalized here, not by libxml2
(measured: below ~16 KB the bookkeeping costs more than libxml2 does)."""
_MARKER = f"axis-bulk-{secrets.token_hex(16)}"
_MARKER_BYTES = _MARKER.encode()


def _escape_text(data: bytes) -> bytes:
    # The four characters C14N escapes in text nodes; base64 has none of them.
    if b"&" in data:
        data = data.replace(b"&", b"&amp;")
    if b"<" in data:
        data = data.replace(b"<", b"&lt;")
    if b">" in data:
        data = data.replace(b">", b"&gt;")
    if b"\r" in data:
        data = data.replace(b"\r", b"&#xD;")
    return data


def _bulky_elements(root: etree._Element) -> list[etree._Element]:
    if root.tag != _EDXML:
        return []
    return [
        element
        for element in root.iterfind(_ATTACHMENT_PATH)
        if len(element) == 0 and element.text is not None and len(element.text) >= _BULKY
    ]


def enveloped_digest(
    signature: etree._Element,
    inclusive_prefixes: Sequence[str] | None = None,
    found: SignatureScan | None = None,
    *,
    disposable: bool = False,
    method: CanonicalizationMethod = CanonicalizationMethod.EXCLUSIVE_C14N,
    digest_method: DigestMethod = DigestMethod.SHA256,
) -> bytes:
    """The digest of the enveloped-signature transform then C14N of the document.

    By default SHA-256 of exclusive C14N (strict profile); ``method=C14N_10`` and
    ``digest_method=SHA1`` for the legacy profile. Everything below holds for both
    canonicalizations: in each, an element's rendered namespaces (and, in C14N
    1.0, inherited ``xml:*`` attributes) depend on its ancestors only, and the
    whole document (URI="") has all of them.

    Canonical XML is serialized node by node in document order, and whether an
    element renders a namespace depends only on its ancestors, never on its
    siblings; so the canonical form without the Signature is the canonical form
    with it, minus the Signature's bytes. Cutting them out leaves the tree
    untouched: detaching the element instead would make lxml reconcile namespaces
    (it rewrites prefixes inside a moved subtree whose namespace is also declared
    by an ancestor, and then SignedInfo no longer canonicalizes to what was
    signed), and would mutate the caller's tree. Copying a 1 MB edoc per
    verification is what this avoids; the copy remains only as the fallback for a
    document where the cut would be ambiguous. ``found`` saves a walk when the
    caller has already scanned the document.

    libxml2 canonicalizes text character by character, which dominates for a 1 MB
    edoc. With ``disposable=True`` (the caller parsed the tree for this call and
    drops it afterwards) each large attachment text is replaced by a marker before
    libxml2 runs and hashed here with the same escaping. It is not put back:
    setting a 1 MB text in lxml costs more than canonicalizing it, so a caller's
    own tree is never touched.
    """
    tree = signature.getroottree()
    root = tree.getroot()
    bulky = _bulky_elements(root) if disposable else []
    texts = [element.text or "" for element in bulky]
    for element in bulky:
        element.text = _MARKER
    canonical = _canonicalize_document(tree, inclusive_prefixes, method)
    new_hash = _HASHES[digest_method]

    def fallback() -> bytes:
        for element, text in zip(bulky, texts, strict=True):
            element.text = text
        return new_hash(_canonicalize_detached_copy(signature, inclusive_prefixes, method)).digest()

    span = _span(canonical, signature, found or scan(root))
    pieces = canonical.split(_MARKER_BYTES) if bulky else [canonical]
    if span is None or len(pieces) != len(bulky) + 1:
        return fallback()
    start, end = span
    digest = new_hash()
    offset = 0
    for index, piece in enumerate(pieces):
        piece_end = offset + len(piece)
        # Cut the Signature out of this piece, if it lies (wholly) in it.
        if offset <= start and end <= piece_end:
            digest.update(piece[: start - offset])
            digest.update(piece[end - offset :])
        elif end <= offset or start >= piece_end:
            digest.update(piece)
        else:
            return fallback()
        if index < len(bulky):
            digest.update(_escape_text(texts[index].encode()))
        offset = piece_end + len(_MARKER_BYTES)
    return digest.digest()


def enveloped_c14n(
    signature: etree._Element,
    inclusive_prefixes: Sequence[str] | None = None,
    *,
    method: CanonicalizationMethod = CanonicalizationMethod.EXCLUSIVE_C14N,
) -> bytes:
    """The bytes :func:`enveloped_digest` hashes (for tests and debugging)."""
    canonical = _canonicalize_document(signature.getroottree(), inclusive_prefixes, method)
    span = _span(canonical, signature, scan(signature.getroottree().getroot()))
    if span is None:
        return _canonicalize_detached_copy(signature, inclusive_prefixes, method)
    return canonical[: span[0]] + canonical[span[1] :]


def _canonicalize_detached_copy(
    signature: etree._Element,
    inclusive_prefixes: Sequence[str] | None,
    method: CanonicalizationMethod,
) -> bytes:
    tree = signature.getroottree()
    path = []
    node = signature
    while (parent := node.getparent()) is not None:
        path.append(parent.index(node))
        node = parent
    copy = deepcopy(tree)
    target = copy.getroot()
    for index in reversed(path):
        target = target[index]
    parent = target.getparent()
    assert parent is not None
    # lxml moves an element's tail with it; the enveloped transform removes only
    # the element, so its tail text must stay, joined to the text before it.
    tail = target.tail or ""
    previous = target.getprevious()
    parent.remove(target)
    if previous is not None:
        previous.tail = (previous.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    return _canonicalize_document(copy, inclusive_prefixes, method)
