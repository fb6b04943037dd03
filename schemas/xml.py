"""The one hardened XML parser every document goes through.

Axis parses untrusted bytes from 95 agencies, so the parser refuses everything an
attacker could use against it: no DTD is loaded, no entity is expanded, nothing is
fetched from the network, the body has a size limit, and libxml2's nesting limit
(256 levels without ``XML_PARSE_HUGE``) stands. An XXE, a billion-laughs or a
quadratic-blowup document therefore fails fast with :class:`Malformed` instead of
eating memory or reading files.

A DTD that declares any entity is refused here as ``MALFORMED``: libxml2 leaves
entity references in element content unexpanded, but it does substitute internal
entities inside attribute values, so the only safe entity is one never declared.
A bare ``<!DOCTYPE ...>`` declaring nothing is not an attack on the parser; it
parses, and the signature profile (PROTOCOL section 5) then refuses it as
``SIGNATURE_INVALID``. So does one naming an external DTD (``SYSTEM``/``PUBLIC``):
that DTD is never read. (``collect_ids=False`` makes libxml2 load the external
subset, even from a local file such as ``/etc/passwd``; :class:`_NoExternalDTD`
hands it an empty one instead, so no file is opened and no parse error can reveal
whether a path exists.)

The body must be UTF-8: a UTF-16 or UTF-32 body, which libxml2 recognizes by its
byte order mark or its NUL bytes even without an XML declaration, is ``MALFORMED``.

Comments are dropped while parsing: exclusive C14N without comments ignores them,
so a comment slipped into a signed text field leaves the signature intact — and,
because it is gone from the tree, it cannot split the text the hub reads either.
"""

from __future__ import annotations

from lxml import etree

from axis.rejections import Malformed, TooLarge

DEFAULT_MAX_BYTES = 20 * 1024 * 1024


class _NoExternalDTD(etree.Resolver):
    """Every external DTD or entity libxml2 would load is empty: nothing is ever read."""

    def resolve(self, url: str | None, pubid: str | None, context: object) -> object:
        return self.resolve_string("", context)


_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    collect_ids=False,
)
"""lxml parsers are not thread-safe across threads; Axis parses in one thread per process."""
_PARSER.resolvers.add(_NoExternalDTD())

_NOT_UTF8_STARTS = (b"\xfe\xff", b"\xff\xfe")
"""UTF-16 byte order marks (UTF-32LE's starts the same way; UTF-32BE's with NULs)."""


def parse(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> etree._Element:
    """Parse one UTF-8 XML document from untrusted ``data`` and return its root.

    Raises :class:`TooLarge` above ``max_bytes`` and :class:`Malformed` for anything
    that is not one well-formed UTF-8 document free of entity references.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise Malformed("the body is not bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise TooLarge(f"the body is {len(data)} bytes, more than the limit of {max_bytes}")
    if not data.strip():
        raise Malformed("the body is empty")
    if b"\x00" in data[:4] or data.startswith(_NOT_UTF8_STARTS):
        # libxml2 picks UTF-16/32 from these first bytes, declaration or not.
        raise Malformed("the body must be UTF-8, not UTF-16 or UTF-32")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise Malformed(f"not well-formed XML: {exc}") from None
    except (ValueError, UnicodeError) as exc:
        raise Malformed(f"unreadable XML: {exc}") from None
    docinfo = root.getroottree().docinfo
    encoding = (docinfo.encoding or "UTF-8").upper().replace("_", "-")
    if encoding not in ("UTF-8", "UTF8"):
        raise Malformed(f"the body must be UTF-8, not {docinfo.encoding}")
    dtd = docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise Malformed("entity declarations are not allowed (no entity is ever expanded)")
    if dtd is not None or docinfo.externalDTD is not None:
        for _ in root.iter(etree.Entity):
            raise Malformed("entity references are not allowed (no entity is ever expanded)")
    return root


def has_doctype(root: etree._Element) -> bool:
    """Whether the document carried a DOCTYPE (which the signature profile forbids)."""
    docinfo = root.getroottree().docinfo
    return bool(docinfo.doctype) or docinfo.internalDTD is not None


def text_of(element: etree._Element | None) -> str | None:
    """The whole text content of ``element``, ignoring processing instructions.

    ``element.text`` stops at the first child node; a processing instruction placed
    inside a signed field would otherwise hide the rest of the field from the hub.
    """
    if element is None:
        return None
    return "".join(element.itertext(with_tail=True)) if len(element) else (element.text or "")
