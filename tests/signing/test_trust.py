"""signing.trust: loading anchors and CRLs, and refusing CRLs nobody trusted signed."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from signing_docs import edoc
from signing_support import NOW, DevPKI

from signing import TrustStore, pki, sign, verify
from signing.trust import issuer_key


def test_from_files_reads_several_anchors_per_pem_file(tmp_path: Path, dev_pki: DevPKI) -> None:
    other = pki.make_ca("Other CA")
    bundle = tmp_path / "anchors.pem"
    bundle.write_bytes(pki.cert_pem(other.certificate, dev_pki.ca.certificate))
    trust = TrustStore.from_files([bundle])
    assert trust.anchors == (other.certificate, dev_pki.ca.certificate)
    signed = sign(edoc(), dev_pki.ec.key, dev_pki.ec.certificate)
    assert verify(signed, trust, at=NOW).subject_code == "000.00.00.H41"


def test_from_files_loads_a_crl_and_applies_it(tmp_path: Path, dev_pki: DevPKI) -> None:
    anchors, crl_path = tmp_path / "ca.pem", tmp_path / "crl.pem"
    anchors.write_bytes(pki.cert_pem(dev_pki.ca.certificate))
    crl = pki.make_crl(dev_pki.ca, [dev_pki.ec.certificate.serial_number])
    crl_path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    trust = TrustStore.from_files([anchors], crl_paths=[crl_path])
    assert trust.is_revoked(
        dev_pki.ec.certificate.serial_number, issuer_key(dev_pki.ca.certificate)
    )
    assert not trust.is_revoked(
        dev_pki.rsa.certificate.serial_number, issuer_key(dev_pki.ca.certificate)
    )


def test_a_crl_signed_by_an_untrusted_key_is_refused_at_load(dev_pki: DevPKI) -> None:
    impostor = pki.make_ca("Axis Test CA")  # same name, different key
    crl = pki.make_crl(impostor, [dev_pki.ec.certificate.serial_number])
    with pytest.raises(ValueError, match="not signed"):
        TrustStore([dev_pki.ca.certificate], crls=[crl])


def test_a_crl_of_a_known_intermediate_is_accepted(dev_pki: DevPKI) -> None:
    intermediate = pki.make_ca("Intermediate", issuer=dev_pki.ca)
    crl = pki.make_crl(intermediate, [1234])
    trust = TrustStore([dev_pki.ca.certificate], [crl], [intermediate.certificate])
    assert trust.is_revoked(1234, issuer_key(intermediate.certificate))


def test_a_trust_store_needs_an_anchor() -> None:
    with pytest.raises(ValueError, match="anchor"):
        TrustStore([])


def test_a_pem_file_without_certificates_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("nothing here\n")
    with pytest.raises(ValueError):
        TrustStore.from_files([empty])
