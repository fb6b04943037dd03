"""Fixtures for the signing tests: an in-memory PKI, its files, and a fixed clock.

Keys are made once per session (RSA generation is slow); certificates are cheap
and made per test where a test needs special validity or key usage.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

# The test helpers (signing_docs, signing_support) are plain modules next to this
# file; put it on sys.path whatever pytest's import mode. In the "prepend" mode
# tests/ lands on sys.path too, where this folder (no __init__.py, which would
# shadow the real package) looks like an empty namespace package ``signing``:
# make the project root win over it.
_HERE = str(Path(__file__).resolve().parent)
_ROOT = str(Path(__file__).resolve().parents[2])
for _path in (_ROOT, _HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)
if getattr(sys.modules.get("signing"), "__file__", "") is None:
    del sys.modules["signing"]

import pytest  # noqa: E402
from signing_support import DevPKI  # noqa: E402

from signing import TrustStore, pki  # noqa: E402
from signing.pki import CertifiedKey  # noqa: E402


@pytest.fixture(scope="session")
def rsa_key() -> pki.PrivateKey:
    """One RSA-2048 key for the whole session."""
    return pki.generate_key("rsa")


@pytest.fixture(scope="session")
def dev_pki(rsa_key: pki.PrivateKey) -> DevPKI:
    """A CA valid around :data:`NOW` and two agency certificates it issued."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ca = pki.make_ca("Axis Test CA", not_before=start, days=3650)
    return DevPKI(
        ca=ca,
        rsa=pki.make_leaf("000.00.00.G22", ca, key=rsa_key, not_before=start, days=730),
        ec=pki.make_leaf("000.00.00.H41", ca, algo="ec", not_before=start, days=730),
    )


@pytest.fixture(scope="session")
def trust(dev_pki: DevPKI) -> TrustStore:
    """A trust store anchored on the dev CA, with no CRL."""
    return TrustStore([dev_pki.ca.certificate])


@pytest.fixture(params=["rsa", "ec"])
def signer_key(request: pytest.FixtureRequest, dev_pki: DevPKI) -> CertifiedKey:
    """Each agency certificate in turn (RSA, then EC)."""
    return dev_pki.leaf(request.param)


@pytest.fixture
def pki_files(tmp_path: Path, dev_pki: DevPKI) -> dict[str, Path]:
    """The dev PKI written to PEM files, for xmlsec1 and the CLI."""
    files = {
        "ca": tmp_path / "ca.pem",
        "rsa.key": tmp_path / "rsa.key",
        "rsa.pem": tmp_path / "rsa.pem",
        "ec.key": tmp_path / "ec.key",
        "ec.pem": tmp_path / "ec.pem",
    }
    files["ca"].write_bytes(pki.cert_pem(dev_pki.ca.certificate))
    for algo in ("rsa", "ec"):
        leaf = dev_pki.leaf(algo)
        files[f"{algo}.key"].write_bytes(pki.key_pem(leaf.key))
        files[f"{algo}.pem"].write_bytes(pki.cert_pem(leaf.certificate))
    return files
