"""Registry operations paired with the broker provisioning they need.

:mod:`axis.registry` changes only the database and :mod:`axis.broker.topology` only
the broker; an admin operation needs both, and must never leave an agency
half-registered (a row without a RabbitMQ user, or a user without a row). Each
operation here therefore does its database work in one transaction and its
management API calls *inside* that transaction, before the commit, recording how to
undo each broker change it makes. If a broker call, a later step or the commit
itself fails, the transaction rolls back and the recorded undo actions run in
reverse order. Every operation is idempotent: running it again after a failure, or
twice in a row, converges on the same state.

    >>> with Admin.from_config(config) as admin:
    ...     reg = admin.register_agency("000.00.00.G22", "Văn phòng Chính phủ", cert)
    ...     reg.amqp_password  # shown once; the broker keeps only a hash
"""

from __future__ import annotations

import csv
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
import structlog
from cryptography import x509
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from axis import registry
from axis.broker.management import Management, ManagementError
from axis.broker.topology import (
    agency_permissions,
    inbox_queue,
    provision_agency_user,
    provision_inbox,
    remove_agency_user,
    remove_inbox,
)
from axis.config import Config
from axis.db import make_engine
from axis.models import Agency, Certificate, Group, GroupMember
from axis.registry import RegistryError

__all__ = [
    "AGENCY_TAG",
    "STANDARD_GROUPS",
    "Admin",
    "AdminError",
    "AgencyInfo",
    "CertificateInfo",
    "GroupInfo",
    "ImportResult",
    "Registration",
    "as_json",
    "read_agencies_csv",
]

log = structlog.get_logger(__name__)

AGENCY_TAG = "axis-agency"
"""RabbitMQ user tag marking the users the hub created for agencies."""

STANDARD_GROUPS: dict[str, tuple[tuple[str, ...], str]] = {
    "provinces": (("province",), "Every province and centrally-run city"),
    "ministries": (("ministry", "government-agency"), "Ministries and government agencies"),
    "all": (registry.KINDS, "Every registered agency"),
}
"""Groups :meth:`Admin.import_agencies` keeps up to date: name → (agency kinds, description)."""

SUSPEND_REASON = "agency suspended by the Axis hub administrator"
RESET_REASON = "agency password reset by the Axis hub administrator"
REMOVE_REASON = "agency removed from the Axis hub"

Undo = Callable[[], None]


class AdminError(Exception):
    """An admin operation that cannot be done as asked (bad input, conflict)."""


@dataclass(frozen=True)
class Registration:
    """The outcome of registering (or re-registering) an agency.

    ``amqp_password`` is set only when this call gave the RabbitMQ user a password:
    it is shown once and never stored by the hub. Re-registering an existing agency
    whose user still exists gives ``created=False`` and no password; so does a new
    agency whose user already serves another hub's vhost on the same broker.
    """

    code: str
    amqp_user: str
    amqp_password: str | None
    created: bool


@dataclass(frozen=True)
class ImportResult:
    """What :meth:`Admin.import_agencies` did."""

    registrations: tuple[Registration, ...]
    issued: tuple[str, ...]
    """Codes for which a dev certificate was issued because none was in the folder."""
    groups: dict[str, int]
    """Group name → number of members after the import."""
    seconds: float


@dataclass(frozen=True)
class CertificateInfo:
    """A registered certificate, for ``axis agency show``."""

    fingerprint: str
    subject: str
    serial: str
    not_before: datetime
    not_after: datetime
    state: str


@dataclass(frozen=True)
class AgencyInfo:
    """An agency as admins see it: registry facts plus its inbox depth when known."""

    code: str
    name: str
    name_en: str | None
    kind: str
    state: str
    certificates: tuple[CertificateInfo, ...] = ()
    certificate_count: int = 0
    groups: tuple[str, ...] = ()
    inbox_depth: int | None = None
    """Messages waiting in ``axis.inbox.<CODE>``; None when the broker did not say."""


@dataclass(frozen=True)
class GroupInfo:
    """A group and its members."""

    name: str
    description: str
    members: tuple[str, ...] = field(default_factory=tuple)


def read_agencies_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of an agencies CSV (columns ``code,name,name_en,kind``; others ignored)."""
    with Path(path).open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = {"code", "name", "kind"} - set(reader.fieldnames or ())
        if missing:
            raise AdminError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        rows = []
        for line, row in enumerate(reader, start=2):
            code = (row.get("code") or "").strip()
            if not code:
                raise AdminError(f"{path}:{line}: empty agency code")
            rows.append(
                {
                    "code": code,
                    "name": (row.get("name") or "").strip(),
                    "name_en": (row.get("name_en") or "").strip(),
                    "kind": (row.get("kind") or "").strip(),
                }
            )
    return rows


def _now() -> datetime:
    return datetime.now(UTC)


def _new_password() -> str:
    return secrets.token_urlsafe(24)


def _load_cert(cert: x509.Certificate | bytes | str | Path) -> x509.Certificate:
    if isinstance(cert, x509.Certificate):
        return cert
    if isinstance(cert, bytes):
        return registry.load_certificate(cert)
    path = Path(cert)
    try:
        return registry.load_certificate(path.read_bytes())
    except OSError as exc:
        raise AdminError(f"cannot read certificate {path}: {exc.strerror}") from None
    except RegistryError as exc:
        raise AdminError(f"{path}: {exc}") from None


class Admin:
    """Registry + broker administration of one hub (its database and its vhost).

    ``user_tags`` are added to :data:`AGENCY_TAG` on every agency user created (the
    test suite passes its session tag so teardown finds the users).
    """

    def __init__(
        self,
        engine: Engine,
        mgmt: Management,
        vhost: str,
        *,
        user_tags: Iterable[str] = (),
        owns: bool = False,
    ) -> None:
        self.engine = engine
        self.mgmt = mgmt
        self.vhost = vhost
        self.user_tags = (AGENCY_TAG, *(t for t in user_tags if t != AGENCY_TAG))
        self._owns = owns

    @classmethod
    def from_config(cls, config: Config, *, user_tags: Iterable[str] = ()) -> Admin:
        """An :class:`Admin` with its own engine and management client; close it after use."""
        engine = make_engine(config.database.url)
        mgmt = Management(config.management.url, config.management.user, config.management.secret())
        return cls(engine, mgmt, config.broker.vhost, user_tags=user_tags, owns=True)

    def close(self) -> None:
        """Release the engine and HTTP client if this object created them."""
        if self._owns:
            self.mgmt.close()
            self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[tuple[Connection, list[Undo]]]:
        """A DB transaction plus an undo list for the broker changes made inside it.

        The undo actions run, newest first, if anything fails before or during the
        commit; a failing undo is logged, never allowed to hide the original error.
        """
        undo: list[Undo] = []
        try:
            with self.engine.begin() as conn:
                yield conn, undo
        except BaseException:
            for action in reversed(undo):
                try:
                    action()
                except Exception as exc:
                    log.error("admin.undo_failed", action=repr(action), error=str(exc))
            raise

    def _queue_exists(self, name: str) -> bool:
        try:
            self.mgmt.queue(self.vhost, name)
        except ManagementError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def _provision(self, code: str, undo: list[Undo], *, new_agency: bool) -> str | None:
        """Make sure the agency's user, permissions and inbox exist; return a new password.

        A new agency gets a fresh password, taking over a leftover user of that name
        (the registry had no such agency) - unless that user still serves another
        vhost, i.e. another hub on this broker: then it is shared, its password left
        alone and None returned. For an existing agency only what is missing is
        created, so its password stays as it is.
        """
        password: str | None = None
        user = self.mgmt.get_user(code)
        vhosts = {p["vhost"] for p in self.mgmt.user_permissions(code)} if user else set()
        if user is None or (new_agency and not vhosts - {self.vhost}):
            password = _new_password()
            provision_agency_user(self.mgmt, self.vhost, code, password, tags=self.user_tags)
            undo.append(lambda: remove_agency_user(self.mgmt, self.vhost, code))
        else:
            self.mgmt.set_permissions(self.vhost, code, *agency_permissions(code))
            if self.vhost not in vhosts:
                undo.append(lambda: self.mgmt.clear_permissions(self.vhost, code))
        queue = inbox_queue(code)
        if not self._queue_exists(queue):
            # An inbox that already existed may hold undelivered messages: never undo it.
            undo.append(lambda: remove_inbox(self.mgmt, self.vhost, code))
        provision_inbox(self.mgmt, self.vhost, code)
        return password

    def register_agency(
        self,
        code: str,
        name: str,
        cert: x509.Certificate | bytes | str | Path,
        kind: str = "ministry",
        name_en: str | None = None,
    ) -> Registration:
        """Register an agency with its signing certificate, its AMQP user and its inbox.

        Idempotent: registering an existing agency again binds the certificate if it
        is new to it, repairs missing broker objects and returns ``created=False``.
        Raises :class:`RegistryError` for a bad code or kind, or a certificate bound
        to another agency, and :class:`ManagementError` if the broker fails; in every
        failure case neither the registry nor the broker keeps anything of it.
        """
        certificate = _load_cert(cert)
        registry.check_code(code)
        with self._transaction() as (conn, undo):
            now = _now()
            created = registry.add_agency(conn, code, name, kind, now, name_en=name_en or None)
            registry.add_certificate(conn, code, certificate, now)
            password = self._provision(code, undo, new_agency=created)
        log.info("agency.registered", code=code, created=created)
        return Registration(code, code, password, created)

    def import_agencies(
        self,
        csv_path: str | Path,
        certs_dir: str | Path,
        *,
        issue_missing_from_ca: str | Path | None = None,
        key_algorithm: str = "ec",
        progress: Callable[[int], None] | None = None,
    ) -> ImportResult:
        """Register every agency of a CSV, with its certificate ``certs_dir/<CODE>.pem``.

        With ``issue_missing_from_ca`` (a dev CA folder), agencies without a
        certificate get one issued into ``certs_dir`` (key beside it, ``key_algorithm``
        ``ec`` for P-256 or ``rsa`` for RSA-2048); otherwise a
        missing certificate stops the import before anything changes. The whole
        import is one transaction, so it registers all agencies or none, and then
        refreshes the groups of :data:`STANDARD_GROUPS`. ``progress(n)`` is called
        as each agency is done.
        """
        started = time.monotonic()
        rows = read_agencies_csv(csv_path)
        certs = Path(certs_dir)
        issued: list[str] = []
        for row in rows:
            registry.check_code(row["code"])
            if row["kind"] not in registry.KINDS:
                raise AdminError(
                    f"{csv_path}: agency {row['code']} has kind {row['kind']!r}, "
                    f"expected one of {', '.join(registry.KINDS)}"
                )
            if not (certs / f"{row['code']}.pem").is_file():
                if issue_missing_from_ca is None:
                    raise AdminError(
                        f"no certificate {certs / (row['code'] + '.pem')} "
                        "(give --issue-missing --ca DIR to issue dev certificates)"
                    )
                from signing.pki import issue

                issue(
                    row["code"],
                    ca_dir=issue_missing_from_ca,
                    out_dir=certs,
                    algo=key_algorithm,
                    name=row["name"],
                )
                issued.append(row["code"])
        loaded = [(row, _load_cert(certs / f"{row['code']}.pem")) for row in rows]

        registrations: list[Registration] = []
        with self._transaction() as (conn, undo):
            now = _now()
            for row, certificate in loaded:
                code = row["code"]
                created = registry.add_agency(
                    conn, code, row["name"], row["kind"], now, name_en=row["name_en"] or None
                )
                registry.add_certificate(conn, code, certificate, now)
                password = self._provision(code, undo, new_agency=created)
                registrations.append(Registration(code, code, password, created))
                if progress is not None:
                    progress(1)
            groups = self._refresh_standard_groups(conn)
        seconds = time.monotonic() - started
        log.info("agency.imported", agencies=len(rows), issued=len(issued), seconds=seconds)
        return ImportResult(tuple(registrations), tuple(issued), groups, seconds)

    def _refresh_standard_groups(self, conn: Connection) -> dict[str, int]:
        sizes = {}
        for name, (kinds, description) in STANDARD_GROUPS.items():
            members = conn.execute(
                sa.select(Agency.code).where(Agency.kind.in_(kinds)).order_by(Agency.code)
            ).scalars()
            sizes[name] = registry.set_group(conn, name, members, description)
        return sizes

    def _close_connections(self, code: str, reason: str) -> int:
        """Close the agency's open AMQP connections on this hub's vhost; return how many."""
        connections = self.mgmt.list_connections(user=code, vhost=self.vhost)
        for connection in connections:
            self.mgmt.close_connection(connection["name"], reason)
        return len(connections)

    def suspend(self, code: str) -> int:
        """Suspend an agency and close its open AMQP connections; return how many were closed.

        Its user keeps its permissions: when it reconnects, what it submits is
        rejected with ``SENDER_SUSPENDED`` and nothing is delivered to it, which
        tells its operators more than a refused login would. Closing the
        connections makes a running adapter notice at once.
        """
        with self.engine.begin() as conn:
            changed = registry.set_state(conn, code, registry.SUSPENDED, _now())
        closed = self._close_connections(code, SUSPEND_REASON)
        log.info("agency.suspended", code=code, changed=changed, connections_closed=closed)
        return closed

    def resume(self, code: str) -> bool:
        """Make a suspended agency active again; return whether it was suspended."""
        with self.engine.begin() as conn:
            changed = registry.set_state(conn, code, registry.ACTIVE, _now())
        log.info("agency.resumed", code=code, changed=changed)
        return changed

    def add_cert(self, code: str, cert: x509.Certificate | bytes | str | Path) -> str:
        """Bind another signing certificate to an agency; return its fingerprint."""
        certificate = _load_cert(cert)
        with self.engine.begin() as conn:
            fp = registry.add_certificate(conn, code, certificate, _now())
        log.info("agency.certificate_added", code=code, fingerprint=fp)
        return fp

    def revoke_cert(self, fingerprint: str) -> tuple[str, str]:
        """Revoke a certificate in the registry (fingerprint or unique prefix).

        Returns ``(agency code, full fingerprint)``. This is the hub's own
        revocation, effective at the router's next snapshot whatever the CA's CRL
        says.
        """
        wanted = fingerprint.lower().replace(":", "")
        if len(wanted) < 8:
            raise AdminError("give at least 8 hex digits of the fingerprint")
        with self.engine.begin() as conn:
            code = registry.revoke_certificate(conn, wanted, _now())
            full = conn.execute(
                sa.select(Certificate.fingerprint).where(Certificate.fingerprint.startswith(wanted))
            ).scalar_one()
        log.info("agency.certificate_revoked", code=code, fingerprint=full)
        return code, full

    def reset_password(self, code: str) -> Registration:
        """Give the agency's AMQP user a new password and close its connections.

        The old password stops working at once; the new one is returned once.
        """
        with self.engine.connect() as conn:
            registry.require_agency(conn, code)
        user = self.mgmt.get_user(code)
        tags = user["tags"] if user else self.user_tags
        password = _new_password()
        provision_agency_user(self.mgmt, self.vhost, code, password, tags=tags)
        self._close_connections(code, RESET_REASON)
        log.info("agency.password_reset", code=code)
        return Registration(code, code, password, False)

    def remove(self, code: str, *, purge_inbox: bool = False) -> bool:
        """Remove an agency: its rows, certificates, memberships and RabbitMQ user.

        The audit trail keeps its history. Its inbox is kept unless ``purge_inbox``:
        it may hold documents not yet fetched, which an admin can still inspect or
        move (re-registering the code reconnects the agency to them). Returns
        whether the agency was registered; a repeated call still cleans the broker.
        """
        with self._transaction() as (conn, undo):
            removed = registry.remove_agency(conn, code)
            # Reversible until the commit: take its access away, put it back on failure.
            if self.mgmt.get_user(code) is not None:
                self.mgmt.clear_permissions(self.vhost, code)
                undo.append(
                    lambda: self.mgmt.set_permissions(self.vhost, code, *agency_permissions(code))
                )
        self._close_connections(code, REMOVE_REASON)
        remove_agency_user(self.mgmt, self.vhost, code)
        if purge_inbox:
            remove_inbox(self.mgmt, self.vhost, code)
        log.info("agency.removed", code=code, removed=removed, inbox_purged=purge_inbox)
        return removed

    def inbox_depths(self) -> dict[str, int] | None:
        """Messages waiting in every inbox, by agency code; None if the broker is unreachable."""
        prefix = inbox_queue("X")[:-1]
        try:
            queues = self.mgmt.list_queues(self.vhost)
        except ManagementError:
            return None
        return {
            q["name"][len(prefix) :]: int(q.get("messages", 0))
            for q in queues
            if q["name"].startswith(prefix)
        }

    def list_agencies(self, *, with_depths: bool = True) -> list[AgencyInfo]:
        """Every registered agency with its certificate count (and inbox depth)."""
        with self.engine.connect() as conn:
            counts = dict(
                conn.execute(
                    sa.select(Certificate.agency_code, sa.func.count()).group_by(
                        Certificate.agency_code
                    )
                ).all()
            )
            agencies = conn.execute(sa.select(Agency).order_by(Agency.code)).all()
        depths = self.inbox_depths() if with_depths else None
        return [
            AgencyInfo(
                a.code,
                a.name,
                a.name_en,
                a.kind,
                a.state,
                certificate_count=counts.get(a.code, 0),
                inbox_depth=None if depths is None else depths.get(a.code),
            )
            for a in agencies
        ]

    def show_agency(self, code: str) -> AgencyInfo:
        """One agency with its certificates, groups and inbox depth."""
        with self.engine.connect() as conn:
            agency = registry.require_agency(conn, code)
            certs = conn.execute(
                sa.select(Certificate)
                .where(Certificate.agency_code == code)
                .order_by(Certificate.added_at)
            ).all()
            groups = conn.execute(
                sa.select(GroupMember.group_name)
                .where(GroupMember.agency_code == code)
                .order_by(GroupMember.group_name)
            ).scalars()
            group_names = tuple("@" + g for g in groups)
        depth: int | None
        try:
            depth = int(self.mgmt.queue(self.vhost, inbox_queue(code)).get("messages", 0))
        except ManagementError:
            depth = None
        infos = tuple(
            CertificateInfo(c.fingerprint, c.subject, c.serial, c.not_before, c.not_after, c.state)
            for c in certs
        )
        return AgencyInfo(
            agency.code,
            agency.name,
            agency.name_en,
            agency.kind,
            agency.state,
            certificates=infos,
            certificate_count=len(infos),
            groups=group_names,
            inbox_depth=depth,
        )

    def add_group(self, name: str, codes: Sequence[str], description: str = "") -> int:
        """Create ``@name`` or add ``codes`` to it; return its size."""
        with self.engine.begin() as conn:
            size = registry.set_group(conn, name, codes, description)
            if description:
                conn.execute(
                    sa.update(Group)
                    .where(Group.name == registry.check_group(name))
                    .values(description=description)
                )
        log.info("group.updated", group=name, members=size)
        return size

    def remove_group(self, name: str, codes: Sequence[str] = ()) -> bool:
        """Remove ``codes`` from ``@name``, or the whole group when none are given."""
        with self.engine.begin() as conn:
            changed = registry.remove_group(conn, name, codes)
        log.info("group.removed", group=name, members=list(codes), changed=changed)
        return changed

    def list_groups(self) -> list[GroupInfo]:
        """Every group with its members."""
        with self.engine.connect() as conn:
            snapshot = registry.load_snapshot(conn)
            descriptions = dict(conn.execute(sa.select(Group.name, Group.description)).all())
        return [
            GroupInfo(name, descriptions.get(name, ""), members)
            for name, members in sorted(snapshot.groups.items())
        ]


def as_json(value: Any) -> Any:
    """A JSON-ready form of the dataclasses above (datetimes as RFC 3339)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return {k: as_json(getattr(value, k)) for k in value.__dataclass_fields__}
    return value
