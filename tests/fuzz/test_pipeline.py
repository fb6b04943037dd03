"""Fuzzing the pipeline's pure core: :meth:`Pipeline.check` and :meth:`Pipeline.authorize`.

``check`` (parse → validate → verify one message) never raises by design: any
unexpected exception is caught, logged as ``router.internal_error`` and turned into a
``MALFORMED`` "the hub could not process this message". That branch exists for
bugs, so reaching it is a failure here. ``authorize`` then decides the checked
message against a registry snapshot with no I/O. Messages combine hostile bodies
with every kind of AMQP property the hub can meet (no ``user_id``, an unknown one,
odd message ids, types and content types).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import event, example, given
from hypothesis import strategies as st

from axis import db, registry
from axis.archive import Archive
from axis.authorize import AcceptEdoc, AcceptStatus, Known, Retry, Unattributable
from axis.pipeline import Pipeline
from axis.receipts import ReceiptWriter
from axis.record import Inbound
from axis.rejections import Rejection
from schemas.ids import MAX_MESSAGE_ID
from signing import Verifier
from tests.conftest import fresh_pg_database
from tests.fuzz import strategies
from tests.fuzz.strategies import G22, H41, MAX_BYTES, NOW, SIGNERS, TRUST, VALID_DOCUMENTS

INTERNAL_ERROR = "the hub could not process this message"
ORIGINAL_CONTENT = {strategies.signed_content(body): kind for kind, body in VALID_DOCUMENTS.items()}


@dataclass
class Core:
    """A pipeline on a SQLite registry with the fuzzers' agencies, and its snapshot."""

    pipeline: Pipeline
    snapshot: registry.Snapshot


@contextlib.contextmanager
def _core(url: str, folder: Path) -> Iterator[Core]:
    """A pipeline on ``url`` with the fuzzers' agencies registered."""
    db.upgrade(url)
    engine = db.make_engine(url)
    with engine.begin() as conn:
        registry.add_agency(conn, G22, "Văn phòng Chính phủ", "government-agency", NOW)
        registry.add_certificate(conn, G22, SIGNERS["ec"].certificate, NOW)
        registry.add_certificate(conn, G22, SIGNERS["rsa"].certificate, NOW)
        registry.add_agency(conn, H41, "Ủy ban nhân dân tỉnh Nghệ An", "province", NOW)
        registry.add_certificate(conn, H41, SIGNERS["status"].certificate, NOW)
        registry.set_group(conn, "@provinces", [H41])
    archive = Archive(folder / "archive")
    pipeline = Pipeline(
        engine=engine,
        archive=archive,
        verifier=Verifier(TRUST),
        writer=ReceiptWriter(SIGNERS["ec"]),
        hub_user="axis-hub",
        max_bytes=MAX_BYTES,
        clock=lambda: NOW,
    )
    try:
        yield Core(pipeline, pipeline.registry.current(engine))
    finally:
        archive.close()
        engine.dispose()


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Core]:
    folder = tmp_path_factory.mktemp("fuzz-core")
    with _core(f"sqlite:///{folder / 'axis.db'}", folder) as the_core:
        yield the_core


_BODIES = st.one_of(
    strategies.mutated(VALID_DOCUMENTS),
    strategies.mutated(VALID_DOCUMENTS),
    st.sampled_from(sorted(VALID_DOCUMENTS.values())),
    strategies.xml_like(),
    st.binary(max_size=512),
)


def _mostly(good: object, *others: object) -> st.SearchStrategy:
    """``good`` nine times in ten, so that most messages reach the signature checks."""
    return st.sampled_from([good] * len(others) * 9 + list(others))


_MESSAGE_IDS = st.one_of(
    st.builds(lambda: str(uuid.uuid4())),
    st.builds(lambda: str(uuid.uuid4())),
    st.builds(lambda: str(uuid.uuid4())),
    st.none(),
    st.text(max_size=300),
)


@st.composite
def messages(draw: st.DrawFn) -> Inbound:
    """An inbound message as the router could take it from axis.inbound."""
    return Inbound(
        tag=1,
        body=draw(_BODIES),
        user_id=draw(_mostly(G22, H41, None, "", "000.00.00.Z99", "axis-hub")),
        message_id=draw(_MESSAGE_IDS),
        type=draw(_mostly("edoc", "status", "receipt", None, "", "x")),
        content_type=draw(_mostly("application/xml", None, "text/xml", "application/json", "")),
        received_at=NOW,
    )


_STATUS_BEFORE_YEAR_1 = VALID_DOCUMENTS["status"].replace(
    b"2026-11-20T01:00:00.000000Z", b"0001-01-01T00:30:00+01:00"
)


@given(messages())
@example(Inbound(1, _STATUS_BEFORE_YEAR_1, H41, "m-1", "status", "application/xml", NOW))
def test_check_and_authorize_decide_any_message_without_an_internal_error(
    core: Core, message: Inbound
) -> None:
    checked = core.pipeline.check(message, core.snapshot)
    failure = checked.failure
    if failure is None:
        assert checked.document is not None and checked.signer is not None
        assert checked.sender == message.user_id
    else:
        assert isinstance(failure, Rejection | Unattributable)
        assert not failure.reason.startswith(INTERNAL_ERROR), failure.reason
    item = core.pipeline.authorize(checked, core.snapshot, Known())
    outcome = item.outcome
    assert isinstance(outcome, AcceptEdoc | AcceptStatus | Retry | Rejection | Unattributable)
    event(type(outcome).__name__ if not isinstance(outcome, Rejection) else outcome.code)
    if isinstance(outcome, AcceptEdoc | AcceptStatus):
        # Whatever the mutation, what is accepted is exactly what was signed.
        assert strategies.signed_content(message.body) in ORIGINAL_CONTENT
        assert message.user_id == G22 and message.type == "edoc"


def test_every_valid_document_is_accepted_by_the_core(core: Core) -> None:
    """The unmutated edocs pass, so the property above is not vacuous."""
    for kind in ("edoc", "edoc-rsa", "edoc-large"):
        message = Inbound(
            1, VALID_DOCUMENTS[kind], G22, str(uuid.uuid4()), "edoc", "application/xml", NOW
        )
        checked = core.pipeline.check(message, core.snapshot)
        item = core.pipeline.authorize(checked, core.snapshot, Known())
        assert isinstance(item.outcome, AcceptEdoc), item.outcome


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db_core(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Core]:
    """A core of this test's own, on SQLite and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        with _core(f"sqlite:///{tmp_path / 'axis.db'}", tmp_path) as the_core:
            yield the_core
        return
    with (
        fresh_pg_database(request.getfixturevalue("pg_url"), "fuzz") as url,
        _core(url, tmp_path) as the_core,
    ):
        yield the_core


def test_a_message_id_longer_than_the_hub_stores_is_malformed_not_a_stalled_batch(
    any_db_core: Core,
) -> None:
    """Found by this module: a 201-255 character message id passed the check, then
    PostgreSQL refused the documents insert (varchar 200) and the router, taking the
    error for an outage, retried the batch forever. The limit is now the column's."""
    longest, too_long = "m" * MAX_MESSAGE_ID, "m" * (MAX_MESSAGE_ID + 1)
    kinds = {"edoc": longest, "edoc-rsa": too_long}
    batch = [
        Inbound(n, VALID_DOCUMENTS[kind], G22, message_id, "edoc", "application/xml", NOW)
        for n, (kind, message_id) in enumerate(kinds.items())
    ]
    accepted, refused = any_db_core.pipeline.handle(batch)[0]
    assert isinstance(accepted.outcome, AcceptEdoc)
    assert isinstance(refused.outcome, Rejection) and refused.outcome.code == "MALFORMED"
    with any_db_core.pipeline.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT message_id FROM documents")).scalars().all()
    assert stored == [longest]
