"""A development PKI: a CA, agency signing certificates, TLS certificates, and a CRL.

Production trusts the government CA; demos and tests use this one. Two layers:

- in memory (:func:`generate_key`, :func:`make_ca`, :func:`make_leaf`,
  :func:`make_tls_leaf`, :func:`make_crl`), with every validity date and key usage a
  parameter, so a test can mint an expired, not-yet-valid or unfit certificate in
  microseconds;
- on disk (:func:`init_ca`, :func:`issue`, :func:`issue_tls`, :func:`revoke`), the
  layout behind ``axis pki``::

      CA_DIR/ca.pem  ca.key (0600)  crl.pem  index.json
      OUT_DIR/CODE.pem  CODE.key (0600)

Example::

    ca = init_ca("pki/ca", name="Axis Dev CA")
    cert = issue("000.00.00.G22", ca_dir="pki/ca", out_dir="pki/agencies")
    issue_tls("broker", ca_dir="pki/ca", out_dir="pki/tls", hosts=["localhost", "127.0.0.1"])
    revoke(cert.cert_path, ca_dir="pki/ca")
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class KeyAlgorithm(StrEnum):
    """Key types the dev PKI generates: RSA-2048 or EC P-256 (the profile's two)."""

    RSA = "rsa"
    EC = "ec"


@dataclass(frozen=True)
class KeyUsageFlags:
    """The keyUsage bits a test may want on or off (others are always off)."""

    digital_signature: bool = True
    non_repudiation: bool = True
    key_cert_sign: bool = False
    crl_sign: bool = False


SIGNING_USAGE = KeyUsageFlags()
"""digitalSignature + nonRepudiation: what a document signing certificate carries."""

CA_USAGE = KeyUsageFlags(
    digital_signature=True, non_repudiation=False, key_cert_sign=True, crl_sign=True
)
"""What a CA certificate carries."""


@dataclass(frozen=True)
class CertifiedKey:
    """A private key and the certificate for it."""

    key: PrivateKey
    certificate: x509.Certificate


@dataclass(frozen=True)
class CAFiles:
    """Where :func:`init_ca` wrote the CA."""

    directory: Path
    cert_path: Path
    key_path: Path
    crl_path: Path
    fingerprint: str


@dataclass(frozen=True)
class IssuedFiles:
    """Where :func:`issue` wrote a certificate, and its SHA-256 fingerprint."""

    code: str
    cert_path: Path
    key_path: Path
    fingerprint: str
    serial: int


_FILE_SAFE = re.compile(r"^[0-9A-Za-z._-]{1,64}$")


def fingerprint(certificate: x509.Certificate) -> str:
    """The hex SHA-256 of the certificate's DER, as the registry binds it."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def generate_key(algo: KeyAlgorithm | str = KeyAlgorithm.EC, *, rsa_bits: int = 2048) -> PrivateKey:
    """A fresh RSA (``rsa_bits``, 2048 by default) or EC P-256 private key."""
    if KeyAlgorithm(algo) is KeyAlgorithm.RSA:
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organization: str | None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _key_usage(flags: KeyUsageFlags) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=flags.digital_signature,
        content_commitment=flags.non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=flags.key_cert_sign,
        crl_sign=flags.crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _validity(
    not_before: datetime | None, not_after: datetime | None, days: int
) -> tuple[datetime, datetime]:
    # Backdate a little so a certificate minted now is valid on a machine whose
    # clock is slightly behind.
    start = not_before or datetime.now(UTC) - timedelta(minutes=5)
    return start, not_after or start + timedelta(days=days)


def make_ca(
    name: str = "Axis Dev CA",
    *,
    key: PrivateKey | None = None,
    algo: KeyAlgorithm | str = KeyAlgorithm.EC,
    issuer: CertifiedKey | None = None,
    organization: str | None = "Axis",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    days: int = 3650,
    path_length: int | None = None,
) -> CertifiedKey:
    """A CA certificate: self-signed (a trust anchor), or signed by ``issuer`` (an intermediate)."""
    key = key or generate_key(algo)
    start, end = _validity(not_before, not_after, days)
    subject = _name(name, organization)
    signing_key = issuer.key if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_key_usage(CA_USAGE), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    return CertifiedKey(key, builder.sign(signing_key, hashes.SHA256()))


def make_leaf(
    code: str,
    issuer: CertifiedKey,
    *,
    key: PrivateKey | None = None,
    algo: KeyAlgorithm | str = KeyAlgorithm.EC,
    organization: str | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    days: int = 730,
    key_usage: KeyUsageFlags | None = SIGNING_USAGE,
    serial: int | None = None,
) -> CertifiedKey:
    """A document signing certificate for agency ``code`` (subject CN), signed by ``issuer``.

    ``key_usage=None`` leaves the keyUsage extension out entirely, for tests of
    certificates unfit for signing.
    """
    key = key or generate_key(algo)
    start, end = _validity(not_before, not_after, days)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(code, organization))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    if key_usage is not None:
        builder = builder.add_extension(_key_usage(key_usage), critical=True)
    return CertifiedKey(key, builder.sign(issuer.key, hashes.SHA256()))


def make_tls_leaf(
    hosts: Iterable[str],
    issuer: CertifiedKey,
    *,
    key: PrivateKey | None = None,
    algo: KeyAlgorithm | str = KeyAlgorithm.EC,
    client: bool = False,
    common_name: str | None = None,
    days: int = 825,
) -> CertifiedKey:
    """A TLS certificate for ``hosts`` (DNS names or IP addresses), signed by ``issuer``.

    A server certificate (the broker's) by default, a client certificate with
    ``client=True`` (then ``hosts`` may be empty and ``common_name`` names the client).
    Every host goes into subjectAltName, which is what TLS clients check; the CN is
    ``common_name`` or the first host.
    """
    names = list(hosts)
    if not names and not common_name:
        raise ValueError("a TLS certificate needs at least one host or a common name")
    alt_names: list[x509.GeneralName] = []
    for host in names:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    key = key or generate_key(algo)
    start, end = _validity(None, None, days)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name or names[0], None))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                # RSA key exchange (TLS 1.2 without ECDHE) needs keyEncipherment.
                key_encipherment=isinstance(key, rsa.RSAPrivateKey),
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return CertifiedKey(key, builder.sign(issuer.key, hashes.SHA256()))


def make_crl(
    issuer: CertifiedKey,
    revoked: Iterable[int | tuple[int, datetime]] = (),
    *,
    number: int = 1,
    last_update: datetime | None = None,
    next_update: datetime | None = None,
) -> x509.CertificateRevocationList:
    """A CRL signed by ``issuer`` listing ``revoked`` serials (each optionally with a date)."""
    now = last_update or datetime.now(UTC) - timedelta(minutes=5)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(now)
        .next_update(next_update or now + timedelta(days=30))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    for entry in revoked:
        serial, when = entry if isinstance(entry, tuple) else (entry, now)
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(issuer.key, hashes.SHA256())


def key_pem(key: PrivateKey) -> bytes:
    """The unencrypted PKCS#8 PEM of a private key (dev PKI only)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(*certificates: x509.Certificate) -> bytes:
    """The concatenated PEM of one or more certificates."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def load_key(path: str | os.PathLike[str]) -> PrivateKey:
    """Load an unencrypted PEM private key (RSA or EC)."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: only RSA and EC keys can sign documents")
    return key


def load_certificates(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Every certificate in a PEM file, in file order."""
    return x509.load_pem_x509_certificates(Path(path).read_bytes())


def _write_private(path: Path, data: bytes) -> None:
    # Create with 0600 from the start: a chmod after writing leaves a window in
    # which the key is readable under the umask.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)


def _ca_paths(directory: Path) -> tuple[Path, Path, Path, Path]:
    return (
        directory / "ca.pem",
        directory / "ca.key",
        directory / "crl.pem",
        directory / "index.json",
    )


def init_ca(
    directory: str | os.PathLike[str],
    *,
    name: str = "Axis Dev CA",
    algo: KeyAlgorithm | str = KeyAlgorithm.EC,
    days: int = 3650,
) -> CAFiles:
    """Create a self-signed dev CA in ``directory``: ``ca.pem``, ``ca.key``, an empty ``crl.pem``.

    Refuses (``FileExistsError``) to overwrite an existing CA.
    """
    path = Path(directory)
    cert_path, key_path, crl_path, index_path = _ca_paths(path)
    if cert_path.exists() or key_path.exists():
        raise FileExistsError(f"{path} already holds a CA")
    path.mkdir(parents=True, exist_ok=True)
    ca = make_ca(name, algo=algo, days=days)
    _write_private(key_path, key_pem(ca.key))
    cert_path.write_bytes(cert_pem(ca.certificate))
    crl = make_crl(ca, number=1)
    crl_path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    index_path.write_text(json.dumps({"crl_number": 1, "certificates": {}}, indent=2) + "\n")
    return CAFiles(path, cert_path, key_path, crl_path, fingerprint(ca.certificate))


def load_ca(directory: str | os.PathLike[str]) -> CertifiedKey:
    """The CA key and certificate written by :func:`init_ca`."""
    cert_path, key_path, _, _ = _ca_paths(Path(directory))
    return CertifiedKey(load_key(key_path), load_certificates(cert_path)[0])


def _load_index(path: Path) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"crl_number": 1, "certificates": {}}


def issue(
    code: str,
    *,
    ca_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    algo: KeyAlgorithm | str = KeyAlgorithm.EC,
    days: int = 730,
    name: str | None = None,
) -> IssuedFiles:
    """Issue a signing certificate for ``code`` (CN; O = ``name``) into ``out_dir``.

    Writes ``CODE.key`` (0600) and ``CODE.pem``, and records the certificate in the
    CA's ``index.json`` so :func:`revoke` can list it.
    """
    if not _FILE_SAFE.match(code):
        raise ValueError(f"{code!r} is not a usable agency code")
    ca = load_ca(ca_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    leaf = make_leaf(code, ca, algo=algo, days=days, organization=name)
    key_path, cert_path = out / f"{code}.key", out / f"{code}.pem"
    _write_private(key_path, key_pem(leaf.key))
    cert_path.write_bytes(cert_pem(leaf.certificate))
    fp = fingerprint(leaf.certificate)
    index_path = _ca_paths(Path(ca_dir))[3]
    index = _load_index(index_path)
    index["certificates"][format(leaf.certificate.serial_number, "x")] = {
        "code": code,
        "fingerprint": fp,
        "not_after": leaf.certificate.not_valid_after_utc.isoformat(),
        "revoked_at": None,
    }
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    return IssuedFiles(code, cert_path, key_path, fp, leaf.certificate.serial_number)


def issue_tls(
    name: str,
    *,
    ca_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    hosts: Iterable[str] = (),
    client: bool = False,
    algo: KeyAlgorithm | str = KeyAlgorithm.EC,
    days: int = 825,
) -> IssuedFiles:
    """Issue a TLS certificate from the dev CA into ``out_dir``: ``NAME.pem``, ``NAME.key`` (0600).

    A server certificate for ``hosts`` (say the broker's, for ``localhost`` and
    ``127.0.0.1``), or with ``client=True`` a client certificate whose CN is ``name``.
    Recorded in the CA's ``index.json`` like a signing certificate, so
    :func:`revoke` can revoke it.
    """
    if not _FILE_SAFE.match(name):
        raise ValueError(f"{name!r} is not usable as a file name")
    host_list = list(hosts)
    if not client and not host_list:
        raise ValueError("a TLS server certificate needs at least one host name or address")
    ca = load_ca(ca_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    leaf = make_tls_leaf(
        host_list, ca, algo=algo, client=client, common_name=name if client else None, days=days
    )
    key_path, cert_path = out / f"{name}.key", out / f"{name}.pem"
    _write_private(key_path, key_pem(leaf.key))
    cert_path.write_bytes(cert_pem(leaf.certificate))
    fp = fingerprint(leaf.certificate)
    index_path = _ca_paths(Path(ca_dir))[3]
    index = _load_index(index_path)
    index["certificates"][format(leaf.certificate.serial_number, "x")] = {
        "code": name,
        "fingerprint": fp,
        "not_after": leaf.certificate.not_valid_after_utc.isoformat(),
        "revoked_at": None,
        "usage": "tls-client" if client else "tls-server",
    }
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    return IssuedFiles(name, cert_path, key_path, fp, leaf.certificate.serial_number)


def revoke(
    cert_path: str | os.PathLike[str],
    *,
    ca_dir: str | os.PathLike[str],
    at: datetime | None = None,
) -> int:
    """Put the certificate at ``cert_path`` on the CA's CRL and re-sign ``crl.pem``.

    Returns the revoked serial. Raises ``ValueError`` for a certificate this CA did
    not issue. Revoking twice keeps the first revocation date.
    """
    ca = load_ca(ca_dir)
    cert = load_certificates(cert_path)[0]
    try:
        cert.verify_directly_issued_by(ca.certificate)
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise ValueError(f"{cert_path} was not issued by the CA in {ca_dir}: {exc}") from None
    _, _, crl_path, index_path = _ca_paths(Path(ca_dir))
    index = _load_index(index_path)
    entry = index["certificates"].setdefault(
        format(cert.serial_number, "x"),
        {
            "code": _common_name(cert),
            "fingerprint": fingerprint(cert),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "revoked_at": None,
        },
    )
    if entry["revoked_at"] is None:
        entry["revoked_at"] = (at or datetime.now(UTC)).isoformat()
    index["crl_number"] = int(index.get("crl_number", 1)) + 1
    revoked = [
        (int(serial, 16), datetime.fromisoformat(e["revoked_at"]))
        for serial, e in index["certificates"].items()
        if e["revoked_at"]
    ]
    crl = make_crl(ca, revoked, number=index["crl_number"])
    crl_path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    return cert.serial_number


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""
