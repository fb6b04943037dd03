"""``axis pki``: init-ca, issue and revoke write a working dev PKI."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509

from axis.commands.pki import group
from signing.pki import fingerprint, load_certificates


def _run(*args: str | Path) -> str:
    result = CliRunner().invoke(group, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_init_ca_issue_and_revoke_make_a_ca_a_certificate_and_a_crl(tmp_path: Path) -> None:
    ca, out = tmp_path / "ca", tmp_path / "agencies"
    _run("init-ca", ca, "--name", "Axis Dev CA", "--algo", "rsa", "--days", "30")
    assert stat.S_IMODE((ca / "ca.key").stat().st_mode) == 0o600
    assert (ca / "crl.pem").exists()

    output = _run("issue", "000.00.00.G22", "--ca", ca, "--out", out, "--name", "Văn phòng CP")
    cert_path = out / "000.00.00.G22.pem"
    cert = load_certificates(cert_path)[0]
    assert fingerprint(cert) in output
    assert str(cert_path) in output
    assert stat.S_IMODE((out / "000.00.00.G22.key").stat().st_mode) == 0o600

    _run("revoke", cert_path, "--ca", ca)
    crl = x509.load_pem_x509_crl((ca / "crl.pem").read_bytes())
    assert [entry.serial_number for entry in crl] == [cert.serial_number]


def test_init_ca_refuses_an_existing_ca_with_a_message(tmp_path: Path) -> None:
    _run("init-ca", tmp_path)
    result = CliRunner().invoke(group, ["init-ca", str(tmp_path)])
    assert result.exit_code == 1
    assert "already holds a CA" in result.output


def test_revoke_of_a_foreign_certificate_fails_with_a_message(tmp_path: Path) -> None:
    _run("init-ca", tmp_path / "ca")
    _run("init-ca", tmp_path / "other")
    _run("issue", "X", "--ca", tmp_path / "other", "--out", tmp_path)
    result = CliRunner().invoke(
        group, ["revoke", str(tmp_path / "X.pem"), "--ca", str(tmp_path / "ca")]
    )
    assert result.exit_code == 1
    assert "not issued" in result.output
