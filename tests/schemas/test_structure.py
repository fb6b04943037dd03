"""schemas.structure: the one-call fast path agrees with the walk that names the fault."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from axis.rejections import SchemaInvalid
from schemas import structure
from schemas.validate import load_schema
from schemas.xml import parse

CORPUS = Path(__file__).resolve().parents[1] / "corpus_edxml"
Q = "{http://www.mic.gov.vn/TBT/QCVN_102_2016}"


def schema_valid() -> list[etree._Element]:
    """Every corpus file the XSD accepts, and structural variants of them."""
    schema = load_schema("edxml.xsd")
    roots = []
    for path in sorted(CORPUS.glob("*.xml")):
        root = parse(path.read_bytes())
        if schema.validate(root):
            roots.append(root)
    variants = []
    for root in roots:
        header = next(root.iter(f"{Q}MessageHeader"))
        for child in list(header):
            twice = etree.fromstring(etree.tostring(root))
            twin = next(twice.iter(f"{Q}MessageHeader"))
            twin.append(etree.fromstring(etree.tostring(child)))  # the field twice
            variants.append(twice)
            gone = etree.fromstring(etree.tostring(root))
            loser = next(gone.iter(f"{Q}MessageHeader"))
            loser.remove(loser[list(header).index(child)])  # the field missing
            variants.append(gone)
        late = etree.fromstring(etree.tostring(root))
        for date in late.iter(f"{Q}PromulgationDate", f"{Q}Timestamp"):
            date.text = "2015/02/30" + (date.text or "")[10:]
        variants.append(late)
    return roots + [v for v in variants if schema.validate(v)]


def outcome(check, root: etree._Element) -> str:
    try:
        return check(root)
    except SchemaInvalid as exc:
        return f"SCHEMA_INVALID {exc.reason}"


@pytest.mark.parametrize("root", schema_valid(), ids=lambda r: str(id(r)))
def test_the_fast_check_answers_exactly_as_the_detailed_walk(root: etree._Element) -> None:
    assert outcome(structure.check, root) == outcome(structure._check_in_detail, root)
