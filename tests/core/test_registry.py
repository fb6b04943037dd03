"""axis.registry: agencies, certificates and groups, and the snapshot the router decides with."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from axis import registry
from axis.models import Agency, Certificate
from axis.registry import AgencyEntry, CertificateEntry, RegistryError
from signing.pki import make_leaf

NOW = datetime(2026, 11, 20, 3, 4, 5, tzinfo=UTC)
G22, G01, H41, H29 = "000.00.00.G22", "000.00.00.G01", "000.00.00.H41", "000.00.00.H29"


@pytest.fixture
def conn(engine):
    with engine.begin() as connection:
        yield connection


def add(conn, *codes: str) -> None:
    for code in codes:
        registry.add_agency(conn, code, f"Cơ quan {code}", "ministry", NOW)


def test_add_agency_inserts_once_and_is_idempotent(conn) -> None:
    assert registry.version(conn) == 0
    assert registry.add_agency(conn, G22, "Văn phòng Chính phủ", "government-agency", NOW)
    assert registry.version(conn) == 1
    assert not registry.add_agency(conn, G22, "Văn phòng Chính phủ", "government-agency", NOW)
    assert registry.version(conn) == 1
    row = registry.get_agency(conn, G22)
    assert (row.name, row.kind, row.state, row.created_at) == (
        "Văn phòng Chính phủ",
        "government-agency",
        registry.ACTIVE,
        NOW,
    )


def test_add_agency_again_with_new_facts_updates_them_and_bumps_the_version(conn) -> None:
    registry.add_agency(conn, G22, "Văn phòng Chính phủ", "government-agency", NOW)
    assert not registry.add_agency(conn, G22, "VPCP", "ministry", NOW, name_en="Government Office")
    row = registry.get_agency(conn, G22)
    assert (row.name, row.kind, row.name_en) == ("VPCP", "ministry", "Government Office")
    assert registry.version(conn) == 2
    assert conn.execute(sa.select(sa.func.count()).select_from(Agency)).scalar_one() == 1


@pytest.mark.parametrize(
    ("code", "kind", "message"),
    [
        ("000.00.00.g22", "ministry", "is not an agency code"),
        ("A" * 36, "ministry", "is not an agency code"),
        (G22, "company", "kind must be one of"),
    ],
)
def test_add_agency_refuses_a_bad_code_or_kind(conn, code, kind, message) -> None:
    with pytest.raises(RegistryError, match=message):
        registry.add_agency(conn, code, "X", kind, NOW)
    assert registry.version(conn) == 0


def test_add_certificate_binds_a_certificate_to_exactly_one_agency(conn, pki) -> None:
    add(conn, G22, G01)
    certificate = pki.agencies[G22].certificate
    fp = registry.add_certificate(conn, G22, certificate, NOW)
    assert fp == registry.fingerprint(certificate) and len(fp) == 64
    version = registry.version(conn)
    assert registry.add_certificate(conn, G22, certificate, NOW) == fp
    assert registry.version(conn) == version  # binding it again changes nothing
    with pytest.raises(RegistryError, match=f"already registered to agency {G22}"):
        registry.add_certificate(conn, G01, certificate, NOW)
    row = conn.execute(sa.select(*Certificate.__table__.c)).one()
    assert (row.agency_code, row.state, row.not_after) == (
        G22,
        registry.ACTIVE,
        certificate.not_valid_after_utc,
    )


def test_add_certificate_refuses_an_unregistered_agency(conn, pki) -> None:
    with pytest.raises(RegistryError, match=f"agency {G22} is not registered"):
        registry.add_certificate(conn, G22, pki.agencies[G22].certificate, NOW)


def test_revoke_certificate_by_a_prefix_in_any_case_or_with_colons(conn, pki) -> None:
    add(conn, G22, G01)
    fp = registry.add_certificate(conn, G22, pki.agencies[G22].certificate, NOW)
    other = registry.add_certificate(conn, G01, pki.agencies[G01].certificate, NOW)
    prefix = ":".join(fp[i : i + 2] for i in range(0, 12, 2)).upper()
    version = registry.version(conn)
    assert registry.revoke_certificate(conn, prefix, NOW) == G22
    assert registry.version(conn) == version + 1
    certificates = registry.load_snapshot(conn).certificates
    assert certificates[fp] == CertificateEntry(fp, G22, True)
    assert certificates[other] == CertificateEntry(other, G01, False)
    revoked_at = conn.execute(
        sa.select(Certificate.revoked_at).where(Certificate.fingerprint == fp)
    ).scalar_one()
    assert revoked_at == NOW


def test_revoke_certificate_refuses_a_prefix_matching_none_or_several(conn, pki) -> None:
    add(conn, G22)
    registry.add_certificate(conn, G22, pki.agencies[G22].certificate, NOW)
    registry.add_certificate(conn, G22, make_leaf(G22, pki.ca).certificate, NOW)
    with pytest.raises(RegistryError, match="no single registered certificate"):
        registry.revoke_certificate(conn, "00000000", NOW)
    for not_a_fingerprint in ("zz", "", "%", "abc"):
        with pytest.raises(RegistryError, match="not a SHA-256 fingerprint"):
            registry.revoke_certificate(conn, not_a_fingerprint, NOW)


def test_set_state_suspends_and_resumes_and_reports_whether_it_changed(conn) -> None:
    add(conn, G22)
    assert registry.set_state(conn, G22, registry.SUSPENDED, NOW)
    assert registry.load_snapshot(conn).agencies[G22] == AgencyEntry(G22, f"Cơ quan {G22}", False)
    version = registry.version(conn)
    assert not registry.set_state(conn, G22, registry.SUSPENDED, NOW)
    assert registry.version(conn) == version
    assert registry.set_state(conn, G22, registry.ACTIVE, NOW)
    assert registry.load_snapshot(conn).agencies[G22].active
    with pytest.raises(RegistryError, match=f"agency {H41} is not registered"):
        registry.set_state(conn, H41, registry.SUSPENDED, NOW)


def test_groups_are_created_extended_without_duplicates_and_shrunk(conn) -> None:
    add(conn, G22, H41, H29)
    assert registry.set_group(conn, "@provinces", [H41], "Các tỉnh") == 1
    assert registry.set_group(conn, "provinces", [H29, H41, H29]) == 2
    assert registry.load_snapshot(conn).groups == {"provinces": (H29, H41)}
    with pytest.raises(RegistryError, match=f"agency {G01} is not registered"):
        registry.set_group(conn, "@provinces", [G01])
    with pytest.raises(RegistryError, match="is not a group name"):
        registry.set_group(conn, "@Tỉnh", [H41])
    assert registry.remove_group(conn, "@provinces", [H29])
    assert registry.load_snapshot(conn).groups == {"provinces": (H41,)}
    assert registry.remove_group(conn, "@provinces")
    assert registry.load_snapshot(conn).groups == {}
    assert not registry.remove_group(conn, "@provinces")


def test_an_empty_group_is_in_the_snapshot(conn) -> None:
    assert registry.set_group(conn, "@ministries", []) == 0
    assert registry.load_snapshot(conn).groups == {"ministries": ()}


def test_load_snapshot_reflects_the_whole_registry(conn, pki) -> None:
    add(conn, G22, G01, H41, H29)
    fps = {
        c: registry.add_certificate(conn, c, pki.agencies[c].certificate, NOW) for c in (G22, H41)
    }
    registry.set_group(conn, "@provinces", [H41, H29])
    registry.set_group(conn, "@all", [G22, G01, H41, H29])
    registry.set_state(conn, G01, registry.SUSPENDED, NOW)
    registry.revoke_certificate(conn, fps[H41], NOW)
    snapshot = registry.load_snapshot(conn)
    assert snapshot.agencies == {
        code: AgencyEntry(code, f"Cơ quan {code}", code != G01) for code in (G22, G01, H41, H29)
    }
    assert snapshot.certificates == {
        fps[G22]: CertificateEntry(fps[G22], G22, False),
        fps[H41]: CertificateEntry(fps[H41], H41, True),
    }
    assert snapshot.groups == {"provinces": (H29, H41), "all": (G01, G22, H29, H41)}
    assert snapshot.version == registry.version(conn) == 4 + 2 + 2 + 1 + 1


def test_remove_agency_takes_its_certificates_and_memberships_with_it(conn, pki) -> None:
    add(conn, G22, H41)
    registry.add_certificate(conn, H41, pki.agencies[H41].certificate, NOW)
    registry.set_group(conn, "@provinces", [H41])
    assert registry.remove_agency(conn, H41)
    snapshot = registry.load_snapshot(conn)
    assert (list(snapshot.agencies), snapshot.certificates, snapshot.groups) == (
        [G22],
        {},
        {"provinces": ()},
    )
    assert not registry.remove_agency(conn, H41)


def test_every_change_bumps_the_version_by_one(conn, pki) -> None:
    changes = [
        lambda: registry.add_agency(conn, G22, "VPCP", "ministry", NOW),
        lambda: registry.add_agency(conn, H41, "Nghệ An", "province", NOW),
        lambda: registry.add_certificate(conn, G22, pki.agencies[G22].certificate, NOW),
        lambda: registry.set_group(conn, "@provinces", [H41]),
        lambda: registry.set_state(conn, H41, registry.SUSPENDED, NOW),
        lambda: registry.revoke_certificate(
            conn, registry.fingerprint(pki.agencies[G22].certificate), NOW
        ),
        lambda: registry.remove_group(conn, "@provinces", [H41]),
        lambda: registry.remove_agency(conn, H41),
    ]
    for expected, change in enumerate(changes, start=1):
        change()
        assert registry.version(conn) == expected


def test_load_certificate_reports_what_is_not_pem() -> None:
    with pytest.raises(RegistryError, match="not a PEM certificate"):
        registry.load_certificate(b"-----BEGIN NOTHING-----\n")
