"""Interoperability (PROTOCOL section 5): xmlsec1 and signxml signatures verify with ours,
and ours verify with both. Strict: RSA and EC each way. Legacy (rsa-sha1, sha1,
inclusive C14N 1.0): each way too, on documents with the namespace prefixes of
real files, which inclusive C14N makes part of the signed SignedInfo."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import signxml
from lxml import etree
from signing_docs import EDXML_NS, edoc, edoc_element, sdk_edoc, status
from signing_support import NOW, DevPKI
from signxml.algorithms import DigestAlgorithm
from signxml.algorithms import SignatureMethod as SignxmlMethod

from axis.rejections import SignatureInvalid
from signing import SignatureMethod, SignatureProfile, TrustStore, pki, sign, verify
from signing.document import canonicalize_c14n10
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


# The legacy profile


UNTIL = date(2027, 1, 1)
LEGACY = SignatureProfile.LEGACY
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"

LEGACY_TEMPLATE = """<{q}Signature xmlns{x}="http://www.w3.org/2000/09/xmldsig#">
  <{q}SignedInfo>
    <{q}CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>
    <{q}SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/>
    <{q}Reference URI="">
      <{q}Transforms>
        <{q}Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>{c14n}
      </{q}Transforms>
      <{q}DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/>
      <{q}DigestValue/>
    </{q}Reference>
  </{q}SignedInfo>
  <{q}SignatureValue/>
  <{q}KeyInfo><{q}X509Data>{subject}<{q}X509Certificate/></{q}X509Data></{q}KeyInfo>
</{q}Signature>"""


def _legacy_template(*, prefixed: bool, explicit_c14n: bool, subject_name: bool) -> str:
    q, x = ("ds:", ":ds") if prefixed else ("", "")
    c14n = f'\n        <{q}Transform Algorithm="{C14N_10}"/>' if explicit_c14n else ""
    subject = f"<{q}X509SubjectName/>" if subject_name else ""
    return LEGACY_TEMPLATE.format(q=q, x=x, c14n=c14n, subject=subject)


def _with_signature(document: str, signature: str) -> bytes:
    """An unsigned document with ``signature`` (XML text) last in its edXMLHeader."""
    if document.startswith("sdk"):
        return sdk_edoc(signature, xml_lang="vi" if document == "sdk-xml-lang" else None)
    root = edoc_element(8 * 1024) if document == "edoc" else etree.fromstring(status())
    _header(root).append(etree.fromstring(signature))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


LEGACY_DOCUMENTS = ["edoc", "status", "sdk", "sdk-xml-lang"]
"""edoc/status: the edXML: prefix throughout; sdk: the default namespace on the root,
edXML: re-declared inside (EDXML.md section 1); sdk-xml-lang: with xml:lang on the
root, which C14N 1.0 section 2.4 makes SignedInfo inherit (xmlsec1 does, as we do)."""


def _unsigned(document: str) -> bytes:
    return {
        "edoc": lambda: edoc(8 * 1024),
        "status": status,
        "sdk": sdk_edoc,
        "sdk-xml-lang": lambda: sdk_edoc(xml_lang="vi"),
    }[document]()


@needs_xmlsec1
@pytest.mark.parametrize("document", LEGACY_DOCUMENTS)
@pytest.mark.parametrize(
    ("prefixed", "explicit_c14n", "subject_name"),
    [(False, True, True), (False, False, True), (True, True, False), (True, False, False)],
    ids=["sdk-default-ns", "sdk-enveloped-only", "ds-prefix", "ds-prefix-enveloped-only"],
)
def test_a_legacy_document_signed_by_xmlsec1_verifies(
    document: str,
    prefixed: bool,
    explicit_c14n: bool,
    subject_name: bool,
    tmp_path: Path,
    pki_files: dict[str, Path],
    trust: TrustStore,
) -> None:
    # The SDK's own form: an unprefixed Signature (re-declaring the default namespace
    # inside an edXML root whose default is the edXML one), X509SubjectName beside the
    # certificate, with or without the explicit C14N 1.0 transform.
    template, signed = tmp_path / "template.xml", tmp_path / "signed.xml"
    signature = _legacy_template(
        prefixed=prefixed, explicit_c14n=explicit_c14n, subject_name=subject_name
    )
    template.write_bytes(_with_signature(document, signature))
    key_and_cert = f"{pki_files['rsa.key']},{pki_files['rsa.pem']}"
    result = _xmlsec1("--sign", "--privkey-pem", key_and_cert, "--output", signed, template)
    assert result.returncode == 0, result.stderr
    verified = verify(signed.read_bytes(), trust, at=NOW, legacy_until=UNTIL)
    assert verified.profile is LEGACY
    assert verified.algorithm is SignatureMethod.RSA_SHA1
    assert verified.subject_code == "000.00.00.G22"
    # The same document, from a hub whose policy does not accept legacy.
    with pytest.raises(SignatureInvalid, match="legacy profile"):
        verify(signed.read_bytes(), trust, at=NOW)
    if document == "sdk-xml-lang":
        # Not vacuous: what xmlsec1 signed carries the root's xml:lang in SignedInfo,
        # which lxml's own C14N of the element would have left out.
        signed_info = next(etree.parse(signed).iter(f"{{{DS_NS}}}SignedInfo"))
        assert b'xml:lang="vi"' in canonicalize_c14n10(signed_info)
        assert b"xml:lang" not in etree.tostring(signed_info, method="c14n", exclusive=False)


@needs_xmlsec1
@pytest.mark.parametrize("document", LEGACY_DOCUMENTS)
def test_our_legacy_signature_verifies_with_xmlsec1(
    document: str, tmp_path: Path, pki_files: dict[str, Path], dev_pki: DevPKI
) -> None:
    signed = tmp_path / "signed.xml"
    body = sign(_unsigned(document), dev_pki.rsa.key, dev_pki.rsa.certificate, profile=LEGACY)
    signed.write_bytes(body)
    result = _xmlsec1("--verify", "--trusted-pem", pki_files["ca"], signed)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout + result.stderr


@needs_xmlsec1
@pytest.mark.parametrize(
    ("old", "new"),
    [(b"101/VPCP-KSTT", b"102/VPCP-KSTT"), (b"<edXML:edXML ", b'<edXML:edXML xmlns:x="urn:x" ')],
    ids=["content", "namespace-in-scope-of-signedinfo"],
)
def test_xmlsec1_rejects_our_legacy_signature_after_tampering(
    tmp_path: Path, pki_files: dict[str, Path], dev_pki: DevPKI, old: bytes, new: bytes
) -> None:
    # Guards the test above; a declaration added on the root is signed content in
    # inclusive C14N, in the document and in SignedInfo alike.
    signed = tmp_path / "signed.xml"
    data = sign(edoc(), dev_pki.rsa.key, dev_pki.rsa.certificate, profile=LEGACY)
    assert old in data
    signed.write_bytes(data.replace(old, new, 1))
    result = _xmlsec1("--verify", "--trusted-pem", pki_files["ca"], signed)
    assert result.returncode != 0


class _SignxmlLegacySigner(signxml.XMLSigner):
    """signxml refuses SHA-1 unless this check is overridden (its documented hook)."""

    def check_deprecated_methods(self) -> None:
        pass


_SIGNXML_SHA1 = signxml.SignatureConfiguration(
    signature_methods=frozenset({SignxmlMethod.RSA_SHA1}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA1}),
    verification_time=NOW,
)

# signxml canonicalizes SignedInfo with lxml, which does not carry the ancestors'
# xml:* attributes into it as C14N 1.0 section 2.4 says (xmlsec1 and we do): for a
# document with xml:lang above the Signature, signxml disagrees with both, so its
# interop below is on documents without one (like every real file we have seen).
SIGNXML_DOCUMENTS: dict[str, Callable[[], etree._Element]] = {
    "edoc": lambda: edoc_element(8 * 1024),
    "status": lambda: etree.fromstring(status()),
    "sdk": lambda: etree.fromstring(sdk_edoc()),
}


@pytest.mark.parametrize("document", sorted(SIGNXML_DOCUMENTS))
def test_a_legacy_document_signed_by_signxml_verifies(
    document: str, dev_pki: DevPKI, trust: TrustStore
) -> None:
    root = SIGNXML_DOCUMENTS[document]()
    etree.SubElement(_header(root), f"{{{DS_NS}}}Signature", Id="placeholder", nsmap={"ds": DS_NS})
    signer = _SignxmlLegacySigner(
        method=signxml.methods.enveloped,
        signature_algorithm="rsa-sha1",
        digest_algorithm="sha1",
        c14n_algorithm=C14N_10,
    )
    signed = signer.sign(
        root, key=pki.key_pem(dev_pki.rsa.key), cert=pki.cert_pem(dev_pki.rsa.certificate).decode()
    )
    data = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    verified = verify(data, trust, at=NOW, legacy_until=UNTIL)
    assert verified.profile is LEGACY
    assert verified.fingerprint == pki.fingerprint(dev_pki.rsa.certificate)


@pytest.mark.parametrize("document", ["edoc", "status", "sdk"])
def test_our_legacy_signature_verifies_with_signxml(
    document: str, dev_pki: DevPKI, pki_files: dict[str, Path]
) -> None:
    signed = sign(_unsigned(document), dev_pki.rsa.key, dev_pki.rsa.certificate, profile=LEGACY)
    result = signxml.XMLVerifier().verify(
        signed, ca_pem_file=str(pki_files["ca"]), expect_config=_SIGNXML_SHA1
    )
    assert etree.QName(result.signed_xml).localname == "edXML"
    # Guard: signxml's default configuration refuses SHA-1, so the pass above is ours.
    with pytest.raises(signxml.exceptions.InvalidInput):
        signxml.XMLVerifier().verify(
            signed,
            ca_pem_file=str(pki_files["ca"]),
            expect_config=signxml.SignatureConfiguration(verification_time=NOW),
        )
