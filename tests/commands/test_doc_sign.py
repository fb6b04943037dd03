"""``axis doc sign`` / ``axis doc verify``: sign a file, verify it, report rejections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from axis.commands import doc_sign
from signing import pki

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"


def _edoc() -> bytes:
    def e(parent: etree._Element, local: str, text: str | None = None) -> etree._Element:
        element = etree.SubElement(parent, f"{{{EDXML_NS}}}{local}")
        element.text = text
        return element

    root = etree.Element(f"{{{EDXML_NS}}}edXML", nsmap={"edXML": EDXML_NS})
    envelope = e(root, "edXMLEnvelope")
    header = e(envelope, "edXMLHeader")
    message = e(header, "MessageHeader")
    e(e(message, "From"), "OrganId", "000.00.00.G22")
    e(message, "Subject", "Về việc thử nghiệm")
    e(envelope, "edXMLBody")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Path]:
    ca = pki.init_ca(tmp_path / "ca")
    issued = pki.issue("000.00.00.G22", ca_dir=ca.directory, out_dir=tmp_path / "out")
    document = tmp_path / "doc.xml"
    document.write_bytes(_edoc())
    return {
        "ca": ca.cert_path,
        "crl": ca.crl_path,
        "ca_dir": ca.directory,
        "key": issued.key_path,
        "cert": issued.cert_path,
        "doc": document,
        "signed": tmp_path / "signed.xml",
    }


def _sign(files: dict[str, Path]) -> None:
    result = CliRunner().invoke(
        doc_sign.sign,
        [
            str(files["doc"]),
            "--key",
            str(files["key"]),
            "--cert",
            str(files["cert"]),
            "-o",
            str(files["signed"]),
        ],
    )
    assert result.exit_code == 0, result.output


def test_a_signed_file_verifies_and_names_the_signer(setup: dict[str, Path]) -> None:
    _sign(setup)
    result = CliRunner().invoke(
        doc_sign.verify, [str(setup["signed"]), "--trust", str(setup["ca"])]
    )
    assert result.exit_code == 0, result.output
    assert "000.00.00.G22" in result.output
    assert pki.fingerprint(pki.load_certificates(setup["cert"])[0]) in result.output
    assert "ECDSA_SHA256" in result.output


def test_verify_json_reports_the_signer(setup: dict[str, Path]) -> None:
    _sign(setup)
    result = CliRunner().invoke(
        doc_sign.verify,
        [str(setup["signed"]), "--trust", str(setup["ca"]), "--crl", str(setup["crl"]), "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["valid"] is True
    assert report["code"] is None
    assert report["signer"]["subject_code"] == "000.00.00.G22"


def test_a_tampered_file_exits_1_with_signature_invalid(setup: dict[str, Path]) -> None:
    _sign(setup)
    data = setup["signed"].read_bytes().replace("thử".encode(), b"thu")
    setup["signed"].write_bytes(data)
    result = CliRunner().invoke(
        doc_sign.verify, [str(setup["signed"]), "--trust", str(setup["ca"]), "--json"]
    )
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report == {
        "valid": False,
        "code": "SIGNATURE_INVALID",
        "reason": report["reason"],
        "signer": None,
    }


def test_a_revoked_signer_exits_1_with_cert_revoked(setup: dict[str, Path]) -> None:
    _sign(setup)
    pki.revoke(setup["cert"], ca_dir=setup["ca_dir"])
    result = CliRunner().invoke(
        doc_sign.verify,
        [str(setup["signed"]), "--trust", str(setup["ca"]), "--crl", str(setup["crl"])],
    )
    assert result.exit_code == 1
    assert "CERT_REVOKED" in result.output


def test_verify_at_a_time_after_expiry_exits_1_with_cert_expired(setup: dict[str, Path]) -> None:
    _sign(setup)
    result = CliRunner().invoke(
        doc_sign.verify,
        [str(setup["signed"]), "--trust", str(setup["ca"]), "--at", "2099-01-01T00:00:00Z"],
    )
    assert result.exit_code == 1
    assert "CERT_EXPIRED" in result.output


def test_signing_a_signed_file_fails_with_a_message(setup: dict[str, Path]) -> None:
    _sign(setup)
    result = CliRunner().invoke(
        doc_sign.sign,
        [str(setup["signed"]), "--key", str(setup["key"]), "--cert", str(setup["cert"])],
    )
    assert result.exit_code == 1
    assert "already" in result.output
