"""signing.pki: the dev CA on disk (init, issue, revoke) and the in-memory helpers."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from signing_docs import edoc

from axis.rejections import CertRevoked
from signing import TrustStore, pki, sign, verify


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_ca_writes_cert_private_key_and_an_empty_crl(tmp_path: Path) -> None:
    ca = pki.init_ca(tmp_path / "ca", name="Axis Dev CA", algo="rsa")
    assert _mode(ca.key_path) == 0o600
    cert = pki.load_certificates(ca.cert_path)[0]
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    crl = x509.load_pem_x509_crl(ca.crl_path.read_bytes())
    assert len(crl) == 0
    assert crl.is_signature_valid(cert.public_key())
    assert ca.fingerprint == pki.fingerprint(cert)


def test_init_ca_refuses_to_overwrite_a_ca(tmp_path: Path) -> None:
    pki.init_ca(tmp_path)
    with pytest.raises(FileExistsError):
        pki.init_ca(tmp_path)


def test_issue_writes_an_agency_certificate_fit_for_signing(tmp_path: Path) -> None:
    pki.init_ca(tmp_path / "ca")
    issued = pki.issue(
        "000.00.00.G22", ca_dir=tmp_path / "ca", out_dir=tmp_path / "out", name="Văn phòng"
    )
    assert issued.key_path == tmp_path / "out" / "000.00.00.G22.key"
    assert _mode(issued.key_path) == 0o600
    cert = pki.load_certificates(issued.cert_path)[0]
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == (
        "000.00.00.G22"
    )
    assert cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == (
        "Văn phòng"
    )
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and usage.value.content_commitment
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert issued.fingerprint == pki.fingerprint(cert)
    index = json.loads((tmp_path / "ca" / "index.json").read_text())
    assert index["certificates"][format(issued.serial, "x")]["code"] == "000.00.00.G22"


def test_issue_refuses_a_code_unusable_as_a_file_name(tmp_path: Path) -> None:
    pki.init_ca(tmp_path / "ca")
    with pytest.raises(ValueError):
        pki.issue("../evil", ca_dir=tmp_path / "ca", out_dir=tmp_path / "out")


def test_an_issued_certificate_signs_documents_that_verify_until_revoked(tmp_path: Path) -> None:
    ca = pki.init_ca(tmp_path / "ca")
    issued = pki.issue("axis-hub", ca_dir=ca.directory, out_dir=tmp_path / "hub")
    key = pki.load_key(issued.key_path)
    cert = pki.load_certificates(issued.cert_path)[0]
    signed = sign(edoc(), key, cert)
    now = datetime.now(UTC)
    trust = TrustStore.from_files([ca.cert_path], crl_paths=[ca.crl_path])
    assert verify(signed, trust, at=now).subject_code == "axis-hub"

    serial = pki.revoke(issued.cert_path, ca_dir=ca.directory)
    assert serial == cert.serial_number
    revoked = TrustStore.from_files([ca.cert_path], crl_paths=[ca.crl_path])
    with pytest.raises(CertRevoked):
        verify(signed, revoked, at=now)


def test_revoke_keeps_earlier_revocations_and_bumps_the_crl_number(tmp_path: Path) -> None:
    ca = pki.init_ca(tmp_path / "ca")
    first = pki.issue("A", ca_dir=ca.directory, out_dir=tmp_path)
    second = pki.issue("B", ca_dir=ca.directory, out_dir=tmp_path)
    pki.revoke(first.cert_path, ca_dir=ca.directory)
    pki.revoke(second.cert_path, ca_dir=ca.directory)
    pki.revoke(second.cert_path, ca_dir=ca.directory)
    crl = x509.load_pem_x509_crl(ca.crl_path.read_bytes())
    assert {entry.serial_number for entry in crl} == {first.serial, second.serial}
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 4


def test_revoke_refuses_a_certificate_of_another_ca(tmp_path: Path) -> None:
    ca = pki.init_ca(tmp_path / "ca")
    pki.init_ca(tmp_path / "other")
    foreign = pki.issue("X", ca_dir=tmp_path / "other", out_dir=tmp_path / "out")
    with pytest.raises(ValueError, match="not issued"):
        pki.revoke(foreign.cert_path, ca_dir=ca.directory)


def test_make_leaf_honours_validity_and_key_usage() -> None:
    ca = pki.make_ca()
    start = datetime(2020, 1, 1, tzinfo=UTC)
    leaf = pki.make_leaf(
        "X",
        ca,
        not_before=start,
        not_after=start + timedelta(days=1),
        key_usage=pki.KeyUsageFlags(digital_signature=False, non_repudiation=True),
    )
    cert = leaf.certificate
    assert cert.not_valid_before_utc == start
    assert cert.not_valid_after_utc == start + timedelta(days=1)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert not usage.digital_signature and usage.content_commitment
    without = pki.make_leaf("Y", ca, key_usage=None)
    with pytest.raises(x509.ExtensionNotFound):
        without.certificate.extensions.get_extension_for_class(x509.KeyUsage)
