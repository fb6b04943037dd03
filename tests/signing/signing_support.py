"""Shared test values of the signing tests (importable, unlike conftest)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree
from signing_docs import EDXML_NS

from signing.pki import CertifiedKey

NOW = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
"""The verification time of every test (a fixed clock, as the hub injects one)."""


@dataclass(frozen=True)
class DevPKI:
    """A CA with an RSA and an EC agency certificate, as objects."""

    ca: CertifiedKey
    rsa: CertifiedKey
    ec: CertifiedKey

    def leaf(self, algo: str) -> CertifiedKey:
        """The agency certificate for ``algo`` ("rsa" or "ec")."""
        return self.rsa if algo == "rsa" else self.ec


DS_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
INC_C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"


def _c14n(node: etree._Element | etree._ElementTree, algorithm: str, prefixes=None) -> bytes:
    return etree.tostring(
        node,
        method="c14n",
        exclusive=algorithm == EXC_C14N,
        with_comments=False,
        inclusive_ns_prefixes=prefixes,
    )


def forge(
    document: bytes,
    signer: CertifiedKey,
    *,
    c14n: str = EXC_C14N,
    method: str | None = None,
    digest: str = SHA256,
    transforms: tuple[str, ...] = (ENVELOPED, EXC_C14N),
    uri: str | None = "",
    prefix_list: str | None = None,
    extra_certificates: tuple[bytes, ...] = (),
) -> bytes:
    """Sign ``document`` with arbitrary algorithms, correctly (digest and signature match).

    So a test of the profile proves that the verifier refuses the *algorithm*, not a
    broken signature: the result would verify under a lax XML-DSig implementation.
    Only enveloped + (exclusive or inclusive) C14N are actually computed; other
    transforms are declared but the digest is still that of the enveloped C14N.
    """
    root = etree.fromstring(document)
    if root.tag == f"{{{EDXML_NS}}}edXML":
        parent = root.find(f"{{{EDXML_NS}}}edXMLEnvelope/{{{EDXML_NS}}}edXMLHeader")
    else:
        parent = root
    is_rsa = isinstance(signer.key, rsa.RSAPrivateKey)
    method = method or (RSA_SHA256 if is_rsa else ECDSA_SHA256)
    reference_c14n = next((t for t in transforms if t in (EXC_C14N, INC_C14N)), EXC_C14N)
    prefixes = prefix_list.split() if prefix_list else None
    data = _c14n(root.getroottree(), reference_c14n, prefixes)
    value = hashlib.sha1(data) if digest == SHA1 else hashlib.sha256(data)

    def ds(local: str) -> str:
        return f"{{{DS_NS}}}{local}"

    signature = etree.SubElement(parent, ds("Signature"), nsmap={"ds": DS_NS})
    info = etree.SubElement(signature, ds("SignedInfo"))
    etree.SubElement(info, ds("CanonicalizationMethod"), Algorithm=c14n)
    etree.SubElement(info, ds("SignatureMethod"), Algorithm=method)
    reference = etree.SubElement(info, ds("Reference"))
    if uri is not None:
        reference.set("URI", uri)
    steps = etree.SubElement(reference, ds("Transforms"))
    for algorithm in transforms:
        step = etree.SubElement(steps, ds("Transform"), Algorithm=algorithm)
        if algorithm == XPATH:
            etree.SubElement(step, ds("XPath")).text = "not(ancestor-or-self::ds:Signature)"
        if algorithm == EXC_C14N and prefix_list is not None:
            etree.SubElement(step, f"{{{EXC_C14N}}}InclusiveNamespaces", PrefixList=prefix_list)
    etree.SubElement(reference, ds("DigestMethod"), Algorithm=digest)
    etree.SubElement(reference, ds("DigestValue")).text = base64.b64encode(value.digest()).decode()
    chosen_hash = hashes.SHA1() if method == RSA_SHA1 else hashes.SHA256()
    signed_info = _c14n(info, c14n)
    if is_rsa:
        raw = signer.key.sign(signed_info, padding.PKCS1v15(), chosen_hash)
    else:
        r, s = decode_dss_signature(signer.key.sign(signed_info, ec.ECDSA(chosen_hash)))
        size = (signer.key.curve.key_size + 7) // 8
        raw = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    etree.SubElement(signature, ds("SignatureValue")).text = base64.b64encode(raw).decode()
    x509_data = etree.SubElement(etree.SubElement(signature, ds("KeyInfo")), ds("X509Data"))
    der = signer.certificate.public_bytes(serialization.Encoding.DER)
    for cert in (der, *extra_certificates):
        etree.SubElement(x509_data, ds("X509Certificate")).text = base64.b64encode(cert).decode()
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
