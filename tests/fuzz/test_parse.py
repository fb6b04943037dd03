"""Fuzzing the hardened parser and the schema layer: any bytes give a result or a Rejection.

For any input, :func:`schemas.xml.parse` → :func:`schemas.validate` → the reader of
the kind found (:func:`schemas.read_header` for an edoc, the typed parsers for the
others), and :meth:`signing.Verifier.verify` on the same bytes, each either succeed
or raise :class:`axis.rejections.Rejection`, and never take longer than the
profile's deadline (see ``conftest.py``). Inputs come from three generators: raw
bytes, XML-like text assembled from the constructs an attacker reaches for
(DOCTYPEs, entities, CDATA, PIs, comments, namespaces, deep nesting, odd
encodings), and byte and tree mutations of valid documents, which are the only
inputs that get past the schema to the readers.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from lxml import etree

import schemas
from axis.rejections import Malformed, Rejection
from schemas.xml import parse
from tests.corpus import build
from tests.fuzz import strategies

MAX_BYTES = 256 * 1024


def read_any(data: bytes) -> str:
    """Everything the hub does with a body before the signature, as far as it gets."""
    root = parse(data, max_bytes=MAX_BYTES)
    kind = schemas.validate(root)
    if kind == "edoc":
        schemas.read_header(root)
        schemas.parse_edoc(root, check_schema=False, with_attachments=True)
    elif kind == "status":
        schemas.parse_status(root, check_schema=False)
    elif kind == "receipt":
        schemas.parse_receipt(root, check_schema=False)
    else:
        schemas.parse_rejection(root, check_schema=False)
    return kind


def outcome(data: bytes) -> str:
    """The kind read, or the rejection code; any other exception propagates (a bug).

    The verifier is also run on the raw bytes, schema or not: it parses them itself.
    """
    with contextlib.suppress(Rejection):
        strategies.verifier().verify(data, at=strategies.NOW, max_bytes=MAX_BYTES)
    try:
        return read_any(data)
    except Rejection as exc:
        assert exc.code and exc.reason, exc
        return exc.code


@given(st.binary(max_size=4096))
@example(b"")
@example(b"\xff\xfe<\x00a\x00/\x00>\x00")
@example(b"<?xml version='1.0' encoding='EBCDIC-US'?><a/>")
def test_any_bytes_parse_or_are_rejected(data: bytes) -> None:
    outcome(data)


@given(strategies.xml_like())
def test_xml_like_text_parses_or_is_rejected(data: bytes) -> None:
    outcome(data)


@given(strategies.mutated(strategies.VALID_DOCUMENTS))
def test_mutated_valid_documents_are_read_or_rejected(data: bytes) -> None:
    outcome(data)


@pytest.mark.parametrize("kind", sorted(strategies.VALID_DOCUMENTS))
def test_the_unmutated_documents_read_as_their_kind(kind: str) -> None:
    assert outcome(strategies.VALID_DOCUMENTS[kind]) == kind.split("-")[0]


# Findings, kept as regression tests.


def test_an_external_dtd_on_the_hub_disk_is_never_read(tmp_path: Path) -> None:
    """``collect_ids=False`` made libxml2 load a DOCTYPE's external subset from disk.

    The parse error then quoted the file ("Content error in the external subset"),
    so an agency could learn which paths exist on the hub, and a DTD file there
    could inject declarations. The external subset is now always empty.
    """
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY e "from-disk"><!ATTLIST x injected CDATA "yes">')
    for target in (str(dtd), dtd.as_uri(), "/etc/passwd", "/dev/zero", "/proc/self/environ"):
        root = parse(f'<!DOCTYPE x SYSTEM "{target}"><x a="&e;"/>'.encode())
        assert root.getroottree().docinfo.system_url == target
        assert "from-disk" not in etree.tostring(root).decode()
        assert root.get("injected") is None
    missing = parse(b'<!DOCTYPE x SYSTEM "/nonexistent/x.dtd"><x/>')
    assert missing.tag == "x"  # the same answer whether a file exists or not


def test_a_signed_edoc_behind_an_external_dtd_is_signature_invalid_not_a_file_probe() -> None:
    body = build.with_doctype(
        strategies.VALID_DOCUMENTS["edoc"], '<!DOCTYPE x SYSTEM "/etc/passwd">'
    )
    assert outcome(body) == "edoc"  # parses and validates: the DTD is not read
    assert strategies.verdict(body) == "SIGNATURE_INVALID"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be"])
def test_a_utf16_or_utf32_body_without_declaration_is_malformed(encoding: str) -> None:
    """A UTF-16 body with a byte order mark and no declaration was read as UTF-8 by
    the encoding check (lxml reports UTF-8 when nothing is declared), so a signed
    edoc re-encoded in UTF-16 was accepted and delivered as UTF-16."""
    text = strategies.VALID_DOCUMENTS["edoc"].decode().split("?>", 1)[1]
    body = text.encode(encoding)
    with pytest.raises(Malformed, match="UTF-8"):
        parse(body)
    assert strategies.verdict(body) == "MALFORMED"


def test_a_utf8_byte_order_mark_is_still_utf8() -> None:
    assert outcome(b"\xef\xbb\xbf" + strategies.VALID_DOCUMENTS["edoc"]) == "edoc"


def _with_time(kind: str, tag: bytes, value: bytes) -> bytes:
    body = strategies.VALID_DOCUMENTS[kind]
    start = body.index(tag) + len(tag)
    return body[:start] + value + body[body.index(b"<", start) :]


@pytest.mark.parametrize("value", [b"0001-01-01T00:30:00+01:00", b"9999-12-31T23:59:59-01:00"])
@pytest.mark.parametrize(
    ("kind", "tag"),
    [
        ("status", b"<edXML:Timestamp>"),
        ("edoc", b"<edXML:Timestamp>"),
        ("receipt", b"<ReceivedAt>"),
    ],
)
def test_a_time_that_leaves_the_calendar_in_utc_is_schema_invalid(
    kind: str, tag: bytes, value: bytes
) -> None:
    """xs:dateTime allows 0001-01-01T00:30:00+01:00, which is before year 1 in UTC:
    converting it raised OverflowError, which parse_status let through (the hub then
    answered "could not process this message", its branch for bugs)."""
    assert outcome(_with_time(kind, tag, value)) == "SCHEMA_INVALID"
