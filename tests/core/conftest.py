"""Fixtures for the hub's core without a broker: fresh databases, a PKI, a registry, a pipeline.

``fresh_url`` (function, parametrized)
    An empty database at the head migration, once on SQLite and once on PostgreSQL.
    SQLite gets a copy of a file migrated once per session; PostgreSQL a database of
    the session's own, migrated once and emptied before each test. Either way each
    test starts from an empty chain and registry.
``engine``
    A writer engine on ``fresh_url``.
``pki`` (session)
    An in-memory CA, the hub's signing key and one signing key per agency in
    :data:`AGENCIES`.
``core``
    A :class:`CoreHub`: the pipeline ``axis.service.build_pipeline`` would build, but
    from objects (archive in ``tmp_path``), with every agency in :data:`AGENCIES`
    registered and the groups ``@provinces`` and ``@all``, plus helpers to sign
    documents and wrap them as :class:`~axis.record.Inbound` messages.
"""

from __future__ import annotations

import itertools
import shutil
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

import schemas
from axis import db, registry
from axis.archive import Archive
from axis.audit.chain import GENESIS
from axis.deliver import Outgoing
from axis.models import AuditHead, Base, Delivery, Document, RegistryVersion
from axis.pipeline import Pipeline
from axis.receipts import ReceiptWriter
from axis.record import Inbound, Item
from schemas.samples import sample_edoc, sample_status
from signing import Signer, TrustStore, Verifier
from signing.pki import CertifiedKey, make_ca, make_leaf
from tests.conftest import fresh_pg_database

HUB_USER = "axis-hub"
G22, G01, H41, H29, H58 = (
    "000.00.00.G22",
    "000.00.00.G01",
    "000.00.00.H41",
    "000.00.00.H29",
    "000.00.00.H58",
)
AGENCIES = {
    G22: ("Văn phòng Chính phủ", "government-agency"),
    G01: ("Bộ Công an", "ministry"),
    H41: ("Ủy ban nhân dân tỉnh Nghệ An", "province"),
    H29: ("Ủy ban nhân dân thành phố Hà Nội", "province"),
    H58: ("Ủy ban nhân dân Thành phố Hồ Chí Minh", "province"),
}
PROVINCES = (H29, H41, H58)
MAX_BYTES = 64 * 1024

_POSTGRES = pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration])


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head, copied for each test."""
    path = tmp_path_factory.mktemp("core-template") / "axis.db"
    db.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_core_url(pg_url: str) -> Iterator[str]:
    """A PostgreSQL database of these tests' own, migrated to head once."""
    with fresh_pg_database(pg_url, "core") as core_url:
        db.upgrade(core_url)
        yield core_url


def _empty(url: str) -> None:
    """Bring a migrated database back to what the migration leaves: no rows, genesis head.

    Five times cheaper than a new database from a template, which keeps the suite fast.
    """
    tables = [t.name for t in Base.metadata.sorted_tables if t.name not in _SEEDED]
    engine = db.make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)}"))
            conn.execute(sa.update(AuditHead).values(seq=0, hash=GENESIS))
            conn.execute(sa.update(RegistryVersion).values(version=0))
    finally:
        engine.dispose()


_SEEDED = {AuditHead.__tablename__, RegistryVersion.__tablename__}


@pytest.fixture(params=["sqlite", _POSTGRES])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database at the head migration, for this test alone."""
    if request.param == "sqlite":
        path = tmp_path / "axis.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_core_url")
    _empty(url)
    return url


@pytest.fixture
def engine(fresh_url: str) -> Iterator[sa.Engine]:
    """A writer engine on this test's fresh database."""
    the_engine = db.make_engine(fresh_url)
    try:
        yield the_engine
    finally:
        the_engine.dispose()


@dataclass(frozen=True)
class Pki:
    """A CA, the hub's key and every test agency's key."""

    ca: CertifiedKey
    hub: CertifiedKey
    agencies: dict[str, CertifiedKey]

    @property
    def trust(self) -> TrustStore:
        """A trust store with the CA as its only anchor."""
        return TrustStore([self.ca.certificate])


@pytest.fixture(scope="session")
def pki() -> Pki:
    """One PKI for the session: keys are the slow part, and no test changes them."""
    ca = make_ca("Axis Core Test CA")
    return Pki(ca, make_leaf(HUB_USER, ca), {code: make_leaf(code, ca) for code in AGENCIES})


def register_agencies(engine: sa.Engine, pki: Pki, now: datetime) -> None:
    """Register every test agency with its certificate, and the @provinces and @all groups."""
    with engine.begin() as conn:
        for code, (name, kind) in AGENCIES.items():
            registry.add_agency(conn, code, name, kind, now)
            registry.add_certificate(conn, code, pki.agencies[code].certificate, now)
        registry.set_group(conn, "@provinces", PROVINCES, "Các tỉnh, thành phố")
        registry.set_group(conn, "@all", list(AGENCIES))


@dataclass
class CoreHub:
    """A pipeline on a fresh database with the test agencies registered, and helpers."""

    pipeline: Pipeline
    engine: sa.Engine
    pki: Pki
    archive: Archive
    _numbers: Iterator[int]
    _tags: Iterator[int]

    def signer(self, code: str) -> Signer:
        """The signer of agency ``code``."""
        leaf = self.pki.agencies[code]
        return Signer(leaf.key, leaf.certificate)

    def edoc(
        self, sender: str, recipients: list[str], *, signed_by: str | None = None, **kwargs
    ) -> tuple[schemas.Edoc, bytes]:
        """A fresh edoc from ``sender`` (a new DocumentId each call) and its signed bytes."""
        kwargs.setdefault("document_number", next(self._numbers))
        document = sample_edoc(sender, recipients, **kwargs)
        signed = self.signer(signed_by or sender).sign(schemas.to_element(document))
        return document, signed

    def status(
        self, sender: str, edoc: schemas.Edoc, code: schemas.StatusCode = schemas.StatusCode.ARRIVED
    ) -> bytes:
        """A signed status from ``sender`` about ``edoc``."""
        return self.signer(sender).sign(schemas.to_element(sample_status(sender, edoc, code)))

    def inbound(
        self,
        body: bytes,
        user_id: str | None,
        *,
        type: str | None = "edoc",
        message_id: str | None = "",
        content_type: str | None = "application/xml",
    ) -> Inbound:
        """``body`` as the router takes it from axis.inbound (a fresh message id by default)."""
        return Inbound(
            tag=next(self._tags),
            body=body,
            user_id=user_id,
            message_id=str(uuid.uuid4()) if message_id == "" else message_id,
            type=type,
            content_type=content_type,
            received_at=datetime.now(UTC),
        )

    def handle(
        self, *messages: Inbound, confirmed: Sequence[Item] = ()
    ) -> tuple[list[Item], list[Outgoing]]:
        """Run one batch through the pipeline, as the router does before publishing."""
        return self.pipeline.handle(list(messages), confirmed=confirmed)

    def receipt(self, body: bytes | None) -> schemas.AxisReceipt:
        """A receipt the hub signed, after checking its signature and schema."""
        assert body is not None
        assert self.pipeline.verifier.verify(body, at=datetime.now(UTC)).subject_code == HUB_USER
        return schemas.parse_receipt(body)

    def rejection(self, body: bytes | None) -> schemas.AxisRejection:
        """A rejection the hub signed, after checking its signature and schema."""
        assert body is not None
        assert self.pipeline.verifier.verify(body, at=datetime.now(UTC)).subject_code == HUB_USER
        return schemas.parse_rejection(body)

    def scalar(self, sql: str, **params: object) -> object:
        """One value from the hub's database."""
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar_one()

    def rows(self, sql: str, **params: object) -> list[sa.Row]:
        """Rows from the hub's database."""
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).all()

    def suspend(self, code: str) -> None:
        """Suspend agency ``code`` in the registry."""
        with self.engine.begin() as conn:
            registry.set_state(conn, code, registry.SUSPENDED, datetime.now(UTC))


@pytest.fixture
def core(engine: sa.Engine, pki: Pki, tmp_path: Path) -> Iterator[CoreHub]:
    """A pipeline wired like ``axis.service.build_pipeline``, on a fresh database."""
    register_agencies(engine, pki, datetime.now(UTC))
    archive = Archive(tmp_path / "archive")
    pipeline = Pipeline(
        engine=engine,
        archive=archive,
        verifier=Verifier(pki.trust),
        writer=ReceiptWriter(Signer(pki.hub.key, pki.hub.certificate)),
        hub_user=HUB_USER,
        max_bytes=MAX_BYTES,
    )
    pipeline.registry.ttl = 0  # tests change the registry and send at once
    try:
        yield CoreHub(pipeline, engine, pki, archive, itertools.count(1), itertools.count(1))
    finally:
        archive.close()


Firsts = dict[tuple[str, str], tuple[datetime | None, datetime | None]]


def stored_first_statuses(engine: sa.Engine, *, documents_only: bool = True) -> Firsts:
    """Each document delivery's stored first 01 and 06, by (receipt id, recipient).

    ``documents_only=False`` includes the deliveries of statuses (always empty there).
    """
    query = sa.select(
        Delivery.receipt_id,
        Delivery.recipient,
        Delivery.acknowledged_at,
        Delivery.completed_at,
    )
    if documents_only:
        query = query.join(Document, Document.receipt_id == Delivery.receipt_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return {(r.receipt_id, r.recipient): (r.acknowledged_at, r.completed_at) for r in rows}
