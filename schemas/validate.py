"""Schema validation: which document a root is, and whether it obeys its XSD.

Validation is on the router's hot path, so each XMLSchema is compiled once per
process, on first use. lxml validators keep their error log on the schema object,
so — like the parser in :mod:`schemas.xml` — this module assumes one validating
thread per process.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

from axis.rejections import SchemaInvalid
from schemas import structure
from schemas._common import EDXML_NS, HUB_NS, short_tag, shorten_namespaces

_HERE = Path(__file__).resolve().parent
_MAX_REASON = 400

KINDS: dict[str, tuple[str, str]] = {
    f"{{{EDXML_NS}}}edXML": ("edxml", "edxml.xsd"),
    f"{{{HUB_NS}}}AxisReceipt": ("receipt", "hub.xsd"),
    f"{{{HUB_NS}}}AxisRejection": ("rejection", "hub.xsd"),
}
"""Root element (Clark notation) → (kind, schema file); an ``edxml`` root is a
document or a status, which :func:`schemas.structure.check` tells apart."""


def schema_path(filename: str) -> Path:
    """Where an XSD of this package lives on disk."""
    return _HERE / filename


@functools.cache
def load_schema(filename: str) -> etree.XMLSchema:
    """The compiled XMLSchema for ``filename`` (cached; imports resolve locally only)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(schema_path(filename)), parser))


def validate(root: etree._Element | etree._ElementTree) -> str:
    """Validate a parsed document against the XSD its root names, and return its kind.

    The kind is ``"edoc"``, ``"status"``, ``"receipt"`` or ``"rejection"``. Beyond the
    XSD, :mod:`schemas.structure` checks what XSD 1.0 cannot express for an edXML
    envelope (each child's cardinality in any order, document or status, calendar
    days, what a revoke/update/replace acts on). Raises :class:`SchemaInvalid` with a
    short reason naming the line and element; an unknown root is SchemaInvalid too.
    """
    if isinstance(root, etree._ElementTree):
        root = root.getroot()
    if not isinstance(root, etree._Element) or not isinstance(root.tag, str):
        raise SchemaInvalid("not an XML element")
    entry = KINDS.get(root.tag)
    if entry is None:
        raise SchemaInvalid(f"unknown root element {short_tag(root.tag)}")
    kind, filename = entry
    schema = load_schema(filename)
    if not schema.validate(root):
        raise SchemaInvalid(_describe(schema.error_log))
    if kind == "edxml":
        return structure.check(root)
    return kind


def expect_kind(root: etree._Element, kind: str) -> None:
    """Validate ``root`` and require it to be a ``kind`` document (SchemaInvalid otherwise)."""
    found = validate(root)
    if found != kind:
        raise SchemaInvalid(f"expected {kind}, found {found} ({short_tag(root.tag)})")


def _describe(log: etree._ListErrorLog) -> str:
    if not len(log):
        return "the document does not satisfy the schema"
    error = log[0]
    message = shorten_namespaces(error.message.strip())
    reason = f"line {error.line}: {message}"
    return reason if len(reason) <= _MAX_REASON else reason[: _MAX_REASON - 1] + "…"
