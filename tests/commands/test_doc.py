"""``axis doc new`` and ``axis doc validate``."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import sys
import zipfile
from pathlib import Path

# In pytest's "prepend" import mode tests/ lands on sys.path, where tests/schemas
# (no __init__.py) looks like an empty namespace package ``schemas``: make the
# project root win over it.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
if getattr(sys.modules.get("schemas"), "__file__", "") is None:
    sys.modules.pop("schemas", None)

import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from lxml import etree  # noqa: E402

from cli import main  # noqa: E402
from schemas import BusinessDocType, ResponseFor, parse_edoc, parse_status  # noqa: E402

SUBJECT = "Về việc triển khai Nghị định số 30/2020/NĐ-CP về công tác văn thư"
DOC_ID = "000.00.00.G22,2026/11/20,101/VPCP-KSTT"


def new_args(*extra: str) -> list[str]:
    return [
        "doc",
        "new",
        "--from",
        "000.00.00.G22",
        "--to",
        "000.00.00.H41",
        "--to",
        "@provinces",
        "--subject",
        SUBJECT,
        "--number",
        "101",
        "--notation",
        "VPCP-KSTT",
        "--date",
        "2026-11-20",
        *extra,
    ]


def test_doc_new_then_doc_validate_exit_0(tmp_path: Path) -> None:
    attachment = tmp_path / "Phụ lục.pdf"
    attachment.write_bytes(b"%PDF-1.4\n\x00\xff")
    out = tmp_path / "doc.xml"
    runner = CliRunner()
    made = runner.invoke(
        main,
        new_args(
            "--attach", str(attachment), "--priority", "2", "--due", "2026-12-01", "-o", str(out)
        ),
    )
    assert made.exit_code == 0, made.output
    checked = runner.invoke(main, ["doc", "validate", str(out)])
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.strip() == f"edoc {DOC_ID}"

    edoc = parse_edoc(out.read_bytes())
    assert edoc.subject == SUBJECT
    assert edoc.recipient_ids == ("000.00.00.H41", "@provinces")
    assert edoc.attachments[0].name == "Phụ lục.pdf"
    assert edoc.attachments[0].content_type == "application/pdf"
    assert edoc.attachments[0].data == b"%PDF-1.4\n\x00\xff"
    assert edoc.type_name == "Công văn"


def test_doc_new_writes_to_stdout_without_output(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, new_args())
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.startswith(b"<?xml")
    assert parse_edoc(result.stdout_bytes).document_id == DOC_ID


def test_doc_new_reply_and_revoke(tmp_path: Path) -> None:
    earlier = "000.00.00.H41,2026/11/01,55/UBND-VX"
    result = CliRunner().invoke(
        main,
        new_args(
            "--reply-to", earlier, "--revoke", DOC_ID.replace("101", "99"), "--reason", "Sai sót"
        ),
    )
    assert result.exit_code == 0, result.output
    edoc = parse_edoc(result.stdout_bytes)
    assert edoc.response_for[0].document_id == earlier
    assert edoc.business.doc_type is BusinessDocType.REVOKE
    assert edoc.business.reason == "Sai sót"


def test_doc_new_refuses_two_business_actions() -> None:
    result = CliRunner().invoke(main, new_args("--revoke", DOC_ID, "--update", DOC_ID))
    assert result.exit_code == 2
    assert "exclude each other" in result.output


@pytest.mark.parametrize("option,value", [("--from", "bad"), ("--to", "not a code")])
def test_doc_new_refuses_bad_agency_codes(option: str, value: str) -> None:
    args = new_args()
    args[args.index(option) + 1] = value
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert option in result.output


def test_doc_validate_of_broken_xml_exits_1_with_malformed(tmp_path: Path) -> None:
    broken = tmp_path / "broken.xml"
    broken.write_bytes(b"<edXML><unclosed>")
    result = CliRunner().invoke(main, ["doc", "validate", str(broken)])
    assert result.exit_code == 1
    assert result.stderr.startswith("MALFORMED: ")
    assert result.stdout == ""


def test_doc_validate_of_a_schema_violation_exits_1_with_schema_invalid(tmp_path: Path) -> None:
    made = CliRunner().invoke(main, new_args())
    bad = tmp_path / "bad.xml"
    # An ISO date where EDXML.md writes yyyy/MM/dd.
    bad.write_bytes(made.stdout_bytes.replace(b">2026/11/20<", b">2026-11-20<"))
    result = CliRunner().invoke(main, ["doc", "validate", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.startswith("SCHEMA_INVALID: ")


def test_doc_validate_of_an_oversized_file_exits_1_with_too_large(tmp_path: Path) -> None:
    made = CliRunner().invoke(main, new_args())
    big = tmp_path / "big.xml"
    big.write_bytes(made.stdout_bytes)
    result = CliRunner().invoke(main, ["doc", "validate", "--max-bytes", "100", str(big)])
    assert result.exit_code == 1
    assert result.stderr.startswith("TOO_LARGE: ")


def test_doc_new_zip_then_show_and_extract_give_the_original_file(tmp_path: Path) -> None:
    original = tmp_path / "1896_QD-TTg.doc"
    original.write_bytes("Quyết định số 1896/QĐ-TTg".encode())
    doc = tmp_path / "d.xml"
    made = CliRunner().invoke(
        main, [*new_args(), "--attach", str(original), "--zip", "-o", str(doc)]
    )
    assert made.exit_code == 0, made.output
    assert b"<edXML:ContentType>application/zip<" in doc.read_bytes()
    shown = CliRunner().invoke(main, ["doc", "show", str(doc)])
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    assert "1896_QD-TTg.doc  application/msword" in shown.stdout and digest in shown.stdout
    out = tmp_path / "out"
    extracted = CliRunner().invoke(main, ["doc", "extract", str(doc), "--out", str(out)])
    assert extracted.exit_code == 0, extracted.output
    assert (out / "1896_QD-TTg.doc").read_bytes() == original.read_bytes()


def test_doc_extract_refuses_a_zip_with_path_traversal_and_writes_nothing(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../evil.doc", b"x")
    doc = tmp_path / "d.xml"
    payload = tmp_path / "evil.doc"
    payload.write_bytes(b"placeholder")
    CliRunner().invoke(main, [*new_args(), "--attach", str(payload), "--zip", "-o", str(doc)])
    root = etree.fromstring(doc.read_bytes())
    ns = "{http://www.mic.gov.vn/TBT/QCVN_102_2016}"
    next(root.iter(f"{ns}ContentTransferEncoded")).text = base64.b64encode(
        buffer.getvalue()
    ).decode()
    doc.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["doc", "extract", str(doc), "--out", str(out)])
    assert result.exit_code == 1
    assert "refused" in result.stderr
    assert (tmp_path / "evil.doc").read_bytes() == b"placeholder"
    assert not out.exists() or not any(out.iterdir())


def test_doc_new_writes_every_message_header_field_it_is_given(tmp_path: Path) -> None:
    doc = tmp_path / "d.xml"
    options = [
        *("--document-id", "3f2b8c1e-6d4a-4f7e-9b1a-2c5d8e9f0a1b"),
        *("--from-name", "Văn phòng Chính phủ", "--in-charge", "Thủ tướng Chính phủ"),
        *("--place", "Hà Nội", "--type-detail", "0", "--signer", "Nguyễn Văn An"),
        *("--position", "Bộ trưởng", "--competence", "KT. BỘ TRƯỞNG"),
        *("--to-place", "Các bộ", "--to-place", "Các tỉnh", "--sphere", "Toàn quốc"),
        *("--typer-notation", "NVA", "--copies", "120", "--pages", "4", "--paper"),
        *("-o", str(doc)),
    ]
    made = CliRunner().invoke(main, new_args(*options))
    assert made.exit_code == 0, made.output
    edoc = parse_edoc(doc.read_bytes())
    assert edoc.document_id == "3f2b8c1e-6d4a-4f7e-9b1a-2c5d8e9f0a1b"
    assert (edoc.sender.name, edoc.sender.organization_in_charge) == (
        "Văn phòng Chính phủ",
        "Thủ tướng Chính phủ",
    )
    assert (edoc.place, edoc.type_detail, edoc.to_places) == ("Hà Nội", "0", ("Các bộ", "Các tỉnh"))
    assert edoc.signer is not None and edoc.signer.full_name == "Nguyễn Văn An"
    assert (edoc.sphere_of_promulgation, edoc.typer_notation) == ("Toàn quốc", "NVA")
    assert (edoc.promulgation_amount, edoc.page_amount, edoc.business.paper) == (120, 4, True)


def test_doc_new_update_receiver_reaches_a_new_recipient(tmp_path: Path) -> None:
    original = "000.00.00.G22,2026/11/01,7/VPCP-KSTT"
    args = new_args("--update", original, "--update-receiver", "000.00.00.H29")
    made = CliRunner().invoke(main, args)
    assert made.exit_code == 0, made.output
    edoc = parse_edoc(made.stdout_bytes)
    assert edoc.targets == (original,)
    assert edoc.business.update is not None
    assert [r.organ_id for r in edoc.business.update.receivers] == ["000.00.00.H29"]


@pytest.mark.parametrize(
    "code,options,sender,addressee",
    [
        ("06", ["--from", "000.00.00.H41"], "000.00.00.H41", "000.00.00.G22"),
        ("01", [], "000.00.00.H41", "000.00.00.G22"),
        ("13", [], "000.00.00.G22", "000.00.00.H41"),
    ],
)
def test_doc_new_status_writes_a_status_about_a_received_document(
    tmp_path: Path, code: str, options: list[str], sender: str, addressee: str
) -> None:
    doc = tmp_path / "d.xml"
    one_recipient = new_args()
    group = one_recipient.index("@provinces")
    del one_recipient[group - 1 : group + 1]  # a single To remains: H41
    made = CliRunner().invoke(main, [*one_recipient, "-o", str(doc)])
    assert made.exit_code == 0, made.output
    args = ["doc", "new-status", str(doc), "--code", code, *options, "--staff", "Nguyễn Thị Lan"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    status = parse_status(result.stdout_bytes)
    edoc = parse_edoc(doc.read_bytes())
    assert (status.sender_id, status.addressee, status.code.value) == (sender, addressee, code)
    assert status.response_for == dataclasses.replace(ResponseFor.of(edoc), organ_id=addressee)
    assert status.staff is not None and status.staff.staff == "Nguyễn Thị Lan"


def test_doc_show_and_extract_refuse_a_zip_with_more_entries_than_configured(
    tmp_path: Path,
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(3):
            archive.writestr(f"phu-luc-{n}.txt", b"x")
    payload = tmp_path / "phu-luc.txt"
    payload.write_bytes(b"placeholder")
    doc = tmp_path / "d.xml"
    CliRunner().invoke(main, [*new_args(), "--attach", str(payload), "--zip", "-o", str(doc)])
    root = etree.fromstring(doc.read_bytes())
    ns = "{http://www.mic.gov.vn/TBT/QCVN_102_2016}"
    encoded = next(root.iter(f"{ns}ContentTransferEncoded"))
    encoded.text = base64.b64encode(buffer.getvalue()).decode()
    doc.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    shown = CliRunner().invoke(main, ["doc", "show", str(doc), "--max-entries", "2"])
    assert "REFUSED" in shown.stdout and "entries" in shown.stdout
    assert "phu-luc-0.txt" in CliRunner().invoke(main, ["doc", "show", str(doc)]).stdout
    out = tmp_path / "out"
    args = ["doc", "extract", str(doc), "--out", str(out), "--max-entries", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "refused" in result.stderr
    assert not out.exists() or not any(out.iterdir())
