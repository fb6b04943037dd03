"""Schema validation: which document a root is, and whether it obeys its XSD.

Validation is on the router's hot path, so each XMLSchema is compiled once per
process, on first use. lxml validators keep their error log on the schema object,
so — like the parser in :mod:`schemas.xml` — this module assumes one validating
thread per process.
"""

from __future__ import annotations

import functools
from datetime import date
from pathlib import Path

from lxml import etree

from axis.rejections import SchemaInvalid
from schemas._common import EDXML_NS, HUB_NS, Fields, short_tag, shorten_namespaces
from schemas.ids import DocumentId
from schemas.xml import text_of

_HERE = Path(__file__).resolve().parent
_MAX_REASON = 400

KINDS: dict[str, tuple[str, str]] = {
    f"{{{EDXML_NS}}}edXML": ("edoc", "edxml.xsd"),
    f"{{{EDXML_NS}}}Status": ("status", "edxml.xsd"),
    f"{{{HUB_NS}}}AxisReceipt": ("receipt", "hub.xsd"),
    f"{{{HUB_NS}}}AxisRejection": ("rejection", "hub.xsd"),
}
"""Root element (Clark notation) → (kind, schema file)."""


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
    XSD, it checks what XSD 1.0 cannot express: a DocumentId agrees with the From,
    PromulgationDate and Code it is made of, and a revoke/update/replace names the
    document it acts on. Raises :class:`SchemaInvalid` with a short reason naming
    the line and element; an unknown root is SchemaInvalid too.
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
    if kind == "edoc":
        _check_edoc(root)
    elif kind == "status":
        _check_status(root)
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


def _document_id_text(text: str, where: str) -> DocumentId:
    try:
        return DocumentId.parse(text)
    except ValueError as exc:
        raise SchemaInvalid(f"{where}: {exc}") from None


def _document_id(el: etree._Element | None, where: str) -> DocumentId:
    return _document_id_text(text_of(el) or "", where)


def _same_date(el: etree._Element | None, expected: date) -> bool:
    return (text_of(el) or "").strip() == expected.isoformat()


def _f(element: etree._Element) -> Fields:
    return Fields(element, EDXML_NS)


def _edoc_facts_xpath() -> etree.XPath:
    header = "e:edXMLEnvelope/e:edXMLHeader/"
    mh = header + "e:MessageHeader/"
    business = header + "e:TraceHeaderList/e:Bussiness/"
    # "|" cannot occur in any of these values once the XSD has passed.
    parts = [
        mh + "e:DocumentId",
        mh + "e:From/e:OrganId",
        mh + "e:PromulgationInfo/e:PromulgationDate",
        mh + "e:Code/e:CodeNumber",
        mh + "e:Code/e:CodeNotation",
        business + "e:BussinessDocType",
        f"count({business}e:ReplacementInfo)",
        f"count({mh}e:ResponseFor)",
    ]
    joined = ", '|', ".join(parts)
    return etree.XPath(f"concat({joined})", namespaces={"e": EDXML_NS})


# One compiled XPath reads every fact the checks need in a single call into libxml2,
# a third of the cost of walking the tree from Python.
_EDOC_FACTS = _edoc_facts_xpath()


def _check_edoc(root: etree._Element) -> None:
    facts = str(_EDOC_FACTS(root)).split("|")
    document_id, sender, promulgated, number, notation, doc_type, replacements, replies = facts
    doc_id = _document_id_text(document_id, "DocumentId")
    if doc_id.organ_id != sender:
        raise SchemaInvalid(f"DocumentId {doc_id} does not start with From/OrganId {sender}")
    if promulgated.strip() != doc_id.date.isoformat():
        raise SchemaInvalid(f"DocumentId {doc_id} does not carry the PromulgationDate")
    if (doc_id.number, doc_id.notation) != (number, notation):
        raise SchemaInvalid(f"DocumentId {doc_id} does not carry the Code {number}/{notation}")
    doc_type = doc_type.strip()
    if doc_type == "0" and replacements != "0":
        raise SchemaInvalid("a new document (BussinessDocType 0) has no ReplacementInfo")
    if doc_type != "0" and replacements == "0":
        raise SchemaInvalid(
            f"BussinessDocType {doc_type} (revoke/update/replace) requires ReplacementInfo"
        )
    if replies != "0":
        _check_replies(root)


def _check_replies(root: etree._Element) -> None:
    envelope = _f(root).child("edXMLEnvelope")
    mh = _f(_f(_f(envelope).child("edXMLHeader")).child("MessageHeader"))
    for element in mh.children("ResponseFor"):
        rf = _f(element)
        ref_id = _document_id(rf.child("DocumentId"), "ResponseFor/DocumentId")
        if (
            rf.text("OrganId") != ref_id.organ_id
            or rf.text("Code") != ref_id.code
            or not _same_date(rf.child("PromulgationDate"), ref_id.date)
        ):
            raise SchemaInvalid(f"ResponseFor {ref_id} disagrees with its DocumentId")


def _check_status(root: etree._Element) -> None:
    response_for = _f(_f(root).child("ResponseFor"))
    doc_id = _document_id(response_for.child("DocumentId"), "ResponseFor/DocumentId")
    organ = response_for.text("OrganId")
    if organ != doc_id.organ_id:
        raise SchemaInvalid(f"ResponseFor/OrganId {organ} is not the sender in {doc_id}")
