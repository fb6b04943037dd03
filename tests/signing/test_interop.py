"""Interoperability (PROTOCOL section 5): xmlsec1 and signxml signatures verify with ours,
and ours verify with both. RSA and EC each way."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import signxml
from lxml import etree
from signing_docs import EDXML_NS, edoc, edoc_element, status
from signing_support import NOW, DevPKI

from signing import SignatureMethod, TrustStore, pki, sign, verify
from signing.profile import DS_NS

XMLSEC1 = shutil.which("xmlsec1")
needs_xmlsec1 = pytest.mark.skipif(XMLSEC1 is None, reason="xmlsec1 is not installed")

TEMPLATE = """<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
  <ds:SignedInfo>
    <ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
    <ds:SignatureMethod Algorithm="{method}"/>
    <ds:Reference URI="">
      <ds:Transforms>
        <ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
        <ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
      </ds:Transforms>
      <ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
      <ds:DigestValue/>
    </ds:Reference>
  </ds:SignedInfo>
  <ds:SignatureValue/>
  <ds:KeyInfo><ds:X509Data/></ds:KeyInfo>
</ds:Signature>"""

METHODS = {"rsa": SignatureMethod.RSA_SHA256, "ec": SignatureMethod.ECDSA_SHA256}


def _header(root: etree._Element) -> etree._Element:
    return root.find(f"{{{EDXML_NS}}}edXMLEnvelope/{{{EDXML_NS}}}edXMLHeader")


def _xmlsec1(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert XMLSEC1 is not None
    return subprocess.run(
        [XMLSEC1, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


@needs_xmlsec1
@pytest.mark.parametrize("algo", ["rsa", "ec"])
def test_an_edoc_signed_by_xmlsec1_verifies(
    algo: str, tmp_path: Path, pki_files: dict[str, Path], trust: TrustStore
) -> None:
    root = edoc_element(8 * 1024)
    _header(root).append(etree.fromstring(TEMPLATE.format(method=METHODS[algo].value)))
    template, signed = tmp_path / "template.xml", tmp_path / "signed.xml"
    template.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    key_and_cert = f"{pki_files[f'{algo}.key']},{pki_files[f'{algo}.pem']}"
    result = _xmlsec1("--sign", "--privkey-pem", key_and_cert, "--output", signed, template)
    assert result.returncode == 0, result.stderr
    verified = verify(signed.read_bytes(), trust, at=NOW)
    assert verified.algorithm is METHODS[algo]


@needs_xmlsec1
@pytest.mark.parametrize("algo", ["rsa", "ec"])
@pytest.mark.parametrize("document", [edoc, status], ids=["edoc", "status"])
def test_our_signature_verifies_with_xmlsec1(
    algo: str, document, tmp_path: Path, pki_files: dict[str, Path], dev_pki: DevPKI
) -> None:
    leaf = dev_pki.leaf(algo)
    signed = tmp_path / "signed.xml"
    signed.write_bytes(sign(document(), leaf.key, leaf.certificate))
    result = _xmlsec1("--verify", "--trusted-pem", pki_files["ca"], signed)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout + result.stderr


@needs_xmlsec1
def test_xmlsec1_rejects_our_signature_after_tampering(
    tmp_path: Path, pki_files: dict[str, Path], dev_pki: DevPKI
) -> None:
    # Guards the test above against an xmlsec1 that would accept anything.
    signed = tmp_path / "signed.xml"
    data = sign(edoc(), dev_pki.rsa.key, dev_pki.rsa.certificate)
    signed.write_bytes(data.replace(b"101/VPCP-KSTT", b"102/VPCP-KSTT", 1))
    result = _xmlsec1("--verify", "--trusted-pem", pki_files["ca"], signed)
    assert result.returncode != 0


@pytest.mark.parametrize("algo", ["rsa", "ec"])
def test_an_edoc_signed_by_signxml_verifies(algo: str, dev_pki: DevPKI, trust: TrustStore) -> None:
    leaf = dev_pki.leaf(algo)
    root = edoc_element(8 * 1024)
    # signxml replaces a placeholder Signature with the real one, wherever it is.
    etree.SubElement(_header(root), f"{{{DS_NS}}}Signature", Id="placeholder", nsmap={"ds": DS_NS})
    signer = signxml.XMLSigner(
        method=signxml.methods.enveloped,
        signature_algorithm=METHODS[algo].value,
        digest_algorithm="http://www.w3.org/2001/04/xmlenc#sha256",
        c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#",
    )
    signed = signer.sign(
        root, key=pki.key_pem(leaf.key), cert=pki.cert_pem(leaf.certificate).decode()
    )
    data = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    verified = verify(data, trust, at=NOW)
    assert verified.fingerprint == pki.fingerprint(leaf.certificate)
    assert verified.algorithm is METHODS[algo]


def test_a_signxml_signature_with_another_ds_prefix_verifies(
    dev_pki: DevPKI, trust: TrustStore
) -> None:
    # A placeholder without a prefix makes signxml emit ns0:Signature around a
    # SignedInfo that redeclares "ds": the case where detaching the Signature with
    # lxml would re-map SignedInfo's prefix and break verification.
    root = edoc_element(2048)
    etree.SubElement(_header(root), f"{{{DS_NS}}}Signature", Id="placeholder")
    signer = signxml.XMLSigner(
        method=signxml.methods.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256.value,
        digest_algorithm="http://www.w3.org/2001/04/xmlenc#sha256",
        c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#",
    )
    signed = signer.sign(
        root, key=pki.key_pem(dev_pki.rsa.key), cert=pki.cert_pem(dev_pki.rsa.certificate).decode()
    )
    assert verify(etree.tostring(signed), trust, at=NOW).subject_code == "000.00.00.G22"
    assert verify(signed, trust, at=NOW).subject_code == "000.00.00.G22"


@pytest.mark.parametrize("algo", ["rsa", "ec"])
def test_our_signature_verifies_with_signxml(algo: str, dev_pki: DevPKI) -> None:
    leaf = dev_pki.leaf(algo)
    signed = sign(edoc(), leaf.key, leaf.certificate)
    result = signxml.XMLVerifier().verify(
        signed,
        x509_cert=pki.cert_pem(leaf.certificate).decode(),
        expect_config=signxml.SignatureConfiguration(verification_time=NOW),
    )
    assert result.signed_xml is not None
    assert etree.QName(result.signed_xml).localname == "edXML"


@pytest.mark.parametrize("algo", ["rsa", "ec"])
def test_our_signature_verifies_with_signxml_against_the_ca(
    algo: str, dev_pki: DevPKI, pki_files: dict[str, Path]
) -> None:
    leaf = dev_pki.leaf(algo)
    signed = sign(status(), leaf.key, leaf.certificate)
    signxml.XMLVerifier().verify(
        signed,
        ca_pem_file=str(pki_files["ca"]),
        expect_config=signxml.SignatureConfiguration(verification_time=NOW),
    )
