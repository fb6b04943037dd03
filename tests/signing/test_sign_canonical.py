"""Signer.sign_canonical: the hub's fast path verifies wherever Signer.sign does."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import signxml
from lxml import etree

from axis.rejections import SignatureInvalid
from signing import Signer, TrustStore, Verifier
from signing.pki import cert_pem, make_ca, make_leaf

DOC = (
    '<Note xmlns="urn:axis:hub:1"><Text>Công văn &amp; phụ lục &lt;1&gt;</Text>'
    "<Empty></Empty></Note>"
)


@pytest.fixture(scope="module", params=["ec", "rsa"])
def pki(request):
    ca = make_ca("Canonical CA", algo="ec")
    return ca, make_leaf("axis-hub", ca, algo=request.param)


def _canonical(text: str) -> bytes:
    return etree.tostring(etree.fromstring(text.encode()), method="c14n", exclusive=True)


def test_canonical_signature_verifies_with_our_verifier(pki) -> None:
    ca, leaf = pki
    signed = Signer(leaf.key, leaf.certificate).sign_canonical(_canonical(DOC), before=b"</Note>")
    # The time of the check, not of the module's import: the certificate is made later.
    verified = Verifier(TrustStore([ca.certificate])).verify(signed, at=datetime.now(UTC))
    assert verified.subject_code == "axis-hub"


def test_canonical_signature_is_the_last_child_and_changes_no_text(pki) -> None:
    _, leaf = pki
    signed = Signer(leaf.key, leaf.certificate).sign_canonical(_canonical(DOC), before=b"</Note>")
    root = etree.fromstring(signed)
    assert etree.QName(root[-1]).localname == "Signature"
    assert root[0].text == "Công văn & phụ lục <1>"


def test_canonical_signature_verifies_with_xmlsec1_and_signxml(pki, tmp_path: Path) -> None:
    ca, leaf = pki
    signed = Signer(leaf.key, leaf.certificate).sign_canonical(_canonical(DOC), before=b"</Note>")
    (tmp_path / "doc.xml").write_bytes(signed)
    (tmp_path / "ca.pem").write_bytes(cert_pem(ca.certificate))
    result = subprocess.run(
        [
            "xmlsec1",
            "--verify",
            "--trusted-pem",
            str(tmp_path / "ca.pem"),
            str(tmp_path / "doc.xml"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    config = signxml.SignatureConfiguration(
        signature_methods=list(signxml.SignatureMethod),
        digest_algorithms=[signxml.DigestAlgorithm.SHA256],
    )
    verified = signxml.XMLVerifier().verify(
        signed, ca_pem_file=str(tmp_path / "ca.pem"), expect_config=config
    )
    assert etree.QName(verified.signed_xml).localname == "Note"


def test_bytes_that_are_not_canonical_do_not_verify(pki) -> None:
    ca, leaf = pki
    not_canonical = b'<Note xmlns="urn:axis:hub:1"><Empty/></Note>'  # c14n writes <Empty></Empty>
    signed = Signer(leaf.key, leaf.certificate).sign_canonical(not_canonical, before=b"</Note>")
    with pytest.raises(SignatureInvalid):
        Verifier(TrustStore([ca.certificate])).verify(signed, at=datetime.now(UTC))
