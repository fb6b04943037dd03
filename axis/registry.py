"""The registry of agencies, their certificates and groups.

The router decides against an immutable :class:`Snapshot` taken from the database,
refreshed when the registry's version number changes, so a decision never sees a
registry half-way through an admin's change. Admin operations here only touch the
database; :mod:`axis.admin` pairs them with the broker provisioning they need.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from sqlalchemy import Connection

from axis.models import Agency, Certificate, Group, GroupMember, RegistryVersion
from schemas.ids import is_group_id, is_organ_id

KINDS = ("ministry", "province", "party", "government-agency")
ACTIVE, SUSPENDED, REVOKED = "active", "suspended", "revoked"


class RegistryError(Exception):
    """An admin operation that cannot be done as asked (unknown agency, bad code...)."""


@dataclass(frozen=True)
class AgencyEntry:
    """What the router needs to know about an agency."""

    code: str
    name: str
    active: bool


@dataclass(frozen=True)
class CertificateEntry:
    """A registered certificate, by fingerprint."""

    fingerprint: str
    agency_code: str
    revoked: bool


@dataclass(frozen=True)
class Snapshot:
    """The registry at one moment; the router's routing decisions read only this."""

    agencies: Mapping[str, AgencyEntry] = field(default_factory=dict)
    certificates: Mapping[str, CertificateEntry] = field(default_factory=dict)
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    version: int = 0


def check_code(code: str) -> str:
    """Return ``code`` if it is a valid agency code, else raise :class:`RegistryError`."""
    if not is_organ_id(code):
        raise RegistryError(f"{code!r} is not an agency code ([0-9A-Z.], at most 35 characters)")
    return code


def check_group(name: str) -> str:
    """Return the bare group name (``@`` stripped) if valid, else raise :class:`RegistryError`."""
    bare = name.removeprefix("@")
    if not is_group_id(f"@{bare}"):
        raise RegistryError(f"{name!r} is not a group name (lower-case letters, digits, '-')")
    return bare


def version(conn: Connection) -> int:
    """The registry's version: it grows with every admin change."""
    return conn.execute(
        sa.select(RegistryVersion.version).where(RegistryVersion.id == 1)
    ).scalar_one()


def bump(conn: Connection) -> None:
    """Mark the registry as changed, so routers reload their snapshot."""
    conn.execute(
        sa.update(RegistryVersion)
        .where(RegistryVersion.id == 1)
        .values(version=RegistryVersion.version + 1)
    )


def load_snapshot(conn: Connection) -> Snapshot:
    """Read the whole registry (a few hundred rows) into a :class:`Snapshot`."""
    agencies = {
        row.code: AgencyEntry(row.code, row.name, row.state == ACTIVE)
        for row in conn.execute(sa.select(Agency.code, Agency.name, Agency.state))
    }
    certificates = {
        row.fingerprint: CertificateEntry(row.fingerprint, row.agency_code, row.state == REVOKED)
        for row in conn.execute(
            sa.select(Certificate.fingerprint, Certificate.agency_code, Certificate.state)
        )
    }
    members: dict[str, list[str]] = {row.name: [] for row in conn.execute(sa.select(Group.name))}
    for row in conn.execute(
        sa.select(GroupMember.group_name, GroupMember.agency_code).order_by(GroupMember.agency_code)
    ):
        members[row.group_name].append(row.agency_code)
    return Snapshot(
        agencies, certificates, {k: tuple(v) for k, v in members.items()}, version(conn)
    )


def fingerprint(certificate: x509.Certificate) -> str:
    """The SHA-256 fingerprint of a certificate, lower-case hex."""
    return certificate.fingerprint(hashes.SHA256()).hex()


def load_certificate(pem: bytes) -> x509.Certificate:
    """Read one PEM certificate, with a clear error for anything else."""
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise RegistryError(f"not a PEM certificate: {exc}") from None


def get_agency(conn: Connection, code: str) -> sa.Row | None:
    """The agency row for ``code`` (columns as attributes), or None."""
    return conn.execute(sa.select(*Agency.__table__.c).where(Agency.code == code)).one_or_none()


def require_agency(conn: Connection, code: str) -> sa.Row:
    """The agency row for ``code``; :class:`RegistryError` if not registered."""
    agency = get_agency(conn, code)
    if agency is None:
        raise RegistryError(f"agency {code} is not registered")
    return agency


def add_agency(
    conn: Connection, code: str, name: str, kind: str, now: datetime, name_en: str | None = None
) -> bool:
    """Insert an agency; return False (and change nothing) if it exists with the same facts."""
    check_code(code)
    if kind not in KINDS:
        raise RegistryError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    existing = get_agency(conn, code)
    if existing is not None:
        if (existing.name, existing.kind) != (name, kind):
            conn.execute(
                sa.update(Agency)
                .where(Agency.code == code)
                .values(name=name, kind=kind, name_en=name_en or existing.name_en, updated_at=now)
            )
            bump(conn)
        return False
    conn.execute(
        sa.insert(Agency).values(
            code=code,
            name=name,
            name_en=name_en,
            kind=kind,
            state=ACTIVE,
            created_at=now,
            updated_at=now,
        )
    )
    bump(conn)
    return True


def add_certificate(
    conn: Connection, code: str, certificate: x509.Certificate, now: datetime
) -> str:
    """Bind ``certificate`` to agency ``code``; return its fingerprint.

    A certificate is bound to exactly one agency: binding it to a second is refused.
    """
    require_agency(conn, code)
    fp = fingerprint(certificate)
    owner = conn.execute(
        sa.select(Certificate.agency_code).where(Certificate.fingerprint == fp)
    ).scalar_one_or_none()
    if owner is not None:
        if owner != code:
            raise RegistryError(f"certificate {fp[:16]}… is already registered to agency {owner}")
        return fp
    conn.execute(
        sa.insert(Certificate).values(
            fingerprint=fp,
            agency_code=code,
            subject=certificate.subject.rfc4514_string(),
            serial=format(certificate.serial_number, "x"),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
            pem=certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            state=ACTIVE,
            added_at=now,
        )
    )
    bump(conn)
    return fp


def revoke_certificate(conn: Connection, fp: str, now: datetime) -> str:
    """Mark a certificate revoked (by fingerprint or a unique prefix); return its agency."""
    prefix = fp.lower().replace(":", "")
    if not re.fullmatch(r"[0-9a-f]{8,64}", prefix):
        raise RegistryError(f"{fp!r} is not a SHA-256 fingerprint (or a prefix of 8+ hex digits)")
    matches = conn.execute(
        sa.select(Certificate.fingerprint, Certificate.agency_code).where(
            Certificate.fingerprint.startswith(prefix)
        )
    ).all()
    if len(matches) != 1:
        raise RegistryError(f"no single registered certificate matches fingerprint {fp!r}")
    full, code = matches[0]
    conn.execute(
        sa.update(Certificate)
        .where(Certificate.fingerprint == full, Certificate.state != REVOKED)
        .values(state=REVOKED, revoked_at=now)
    )
    bump(conn)
    return code


def set_state(conn: Connection, code: str, state: str, now: datetime) -> bool:
    """Suspend or resume an agency; return whether anything changed."""
    agency = require_agency(conn, code)
    if agency.state == state:
        return False
    conn.execute(sa.update(Agency).where(Agency.code == code).values(state=state, updated_at=now))
    bump(conn)
    return True


def remove_agency(conn: Connection, code: str) -> bool:
    """Delete an agency with its certificates and memberships; the audit trail keeps its history."""
    if get_agency(conn, code) is None:
        return False
    conn.execute(sa.delete(GroupMember).where(GroupMember.agency_code == code))
    conn.execute(sa.delete(Certificate).where(Certificate.agency_code == code))
    conn.execute(sa.delete(Agency).where(Agency.code == code))
    bump(conn)
    return True


def set_group(conn: Connection, name: str, members: Iterable[str], description: str = "") -> int:
    """Create ``@name`` or add ``members`` to it; return the group's size."""
    bare = check_group(name)
    if conn.execute(sa.select(Group.name).where(Group.name == bare)).scalar_one_or_none() is None:
        conn.execute(sa.insert(Group).values(name=bare, description=description))
    present = set(
        conn.execute(
            sa.select(GroupMember.agency_code).where(GroupMember.group_name == bare)
        ).scalars()
    )
    for code in members:
        require_agency(conn, code)
        if code not in present:
            conn.execute(sa.insert(GroupMember).values(group_name=bare, agency_code=code))
            present.add(code)
    bump(conn)
    return len(present)


def remove_group(conn: Connection, name: str, members: Iterable[str] = ()) -> bool:
    """Remove ``members`` from ``@name``, or the whole group when none are given."""
    bare = check_group(name)
    members = list(members)
    query = sa.delete(GroupMember).where(GroupMember.group_name == bare)
    if members:
        conn.execute(query.where(GroupMember.agency_code.in_(members)))
    else:
        conn.execute(query)
        if conn.execute(sa.delete(Group).where(Group.name == bare)).rowcount == 0:
            return False
    bump(conn)
    return True
