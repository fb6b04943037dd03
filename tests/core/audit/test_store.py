"""axis.audit.store: the chain in the database — append under the head lock, read, verify."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from axis import db
from axis.audit import store
from axis.audit.chain import GENESIS, Event, EventKind, link_digest, verify_links
from axis.audit.verifier import head_checker
from axis.models import ChainHead
from axis.receipts import ReceiptWriter
from signing import Signer, TrustStore, Verifier
from signing.pki import make_ca, make_leaf

T0 = datetime(2026, 11, 20, 3, 4, 5, 123456, tzinfo=UTC)
DOC_A = "000.00.00.G22,2026/11/20,101/VPCP-KSTT"
DOC_B = "000.00.00.G01,2026/11/20,7/BCA"


def event(n: int, document_id: str | None = DOC_A, kind: EventKind = EventKind.RECEIVED) -> Event:
    return Event(
        kind,
        T0 + timedelta(milliseconds=n),
        f"rid-{n}",
        document_id,
        "000.00.00.G22",
        "000.00.00.H41" if kind is EventKind.DELIVERED else None,
        detail={"n": n, "lý do": "Gửi nhầm nơi nhận"},
    )


def fill(engine: sa.Engine, batches: int = 3, size: int = 4) -> None:
    """``batches`` transactions of ``size`` events, alternating between two documents."""
    n = 0
    for _ in range(batches):
        with engine.begin() as conn:
            batch = []
            for _ in range(size):
                n += 1
                batch.append(event(n, DOC_A if n % 2 else DOC_B))
            store.append(conn, batch)


def fill_more(engine: sa.Engine, first: int, last: int) -> None:
    with engine.begin() as conn:
        store.append(conn, [event(n) for n in range(first, last + 1)])


def verify(engine: sa.Engine, **kwargs) -> store.VerifyReport:
    with engine.connect() as conn:
        return store.verify(conn, **kwargs)


def execute(engine: sa.Engine, sql: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text(sql))


@pytest.fixture(scope="module")
def hub_keys():
    ca = make_ca("Audit Test CA")
    hub = make_leaf("axis-hub", ca)
    return ReceiptWriter(Signer(hub.key, hub.certificate)), Verifier(TrustStore([ca.certificate]))


def sign_head(engine: sa.Engine, writer: ReceiptWriter, at: datetime | None = None) -> int:
    with engine.begin() as conn:
        seq, chain_hash = store.head(conn)
        signed_at = at or datetime.now(UTC)
        body = writer.chain_head(seq=seq, chain_hash=chain_hash, signed_at=signed_at)
        conn.execute(
            sa.insert(ChainHead).values(seq=seq, hash=chain_hash, signed_at=signed_at, body=body)
        )
    return seq


def test_an_empty_chain_has_the_genesis_head_and_verifies(engine) -> None:
    with engine.begin() as conn:
        assert store.head(conn) == (0, GENESIS)
        assert store.append(conn, []) == []
        assert store.head(conn) == (0, GENESIS)
    report = verify(engine)
    assert report.ok and (report.checked, report.last_seq, report.last_hash) == (0, 0, GENESIS)


def test_append_numbers_events_gap_free_across_transactions_and_moves_the_head(engine) -> None:
    returned = []
    for first in (1, 4, 9):
        with engine.begin() as conn:
            returned += store.append(conn, [event(first + i) for i in range(first)])
    assert [link.seq for link in returned] == list(range(1, 15))
    with engine.connect() as conn:
        stored = list(store.iter_links(conn))
        assert store.head(conn) == (14, returned[-1].hash)
    assert stored == returned
    assert verify_links(stored) == (14, returned[-1].hash, None)


def test_append_in_a_rolled_back_transaction_leaves_no_trace(engine) -> None:
    fill(engine, batches=1, size=2)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        store.append(conn, [event(3), event(4)])
        raise RuntimeError("the batch failed after recording")
    with engine.begin() as conn:
        [link] = store.append(conn, [event(5)])
    assert link.seq == 3
    assert verify(engine).ok


def test_trail_returns_a_documents_events_in_chain_order(engine) -> None:
    fill(engine, batches=3, size=4)
    with engine.begin() as conn:
        store.append(conn, [event(13, DOC_A, EventKind.DELIVERED), event(14, None)])
    with engine.connect() as conn:
        trail = store.trail(conn, DOC_A)
        assert store.trail(conn, "000.00.00.G22,2026/01/01,1/none") == []
    assert [link.seq for link in trail] == [1, 3, 5, 7, 9, 11, 13]
    assert [link.kind for link in trail] == ["RECEIVED"] * 6 + ["DELIVERED"]
    assert trail[-1].recipient == "000.00.00.H41"
    assert trail[0].detail == '{"lý do":"Gửi nhầm nơi nhận","n":1}'
    assert trail[0].at == T0 + timedelta(milliseconds=1)


def test_iter_links_reads_in_pages_and_links_between_and_hash_at_agree(engine) -> None:
    fill(engine, batches=2, size=5)
    with engine.connect() as conn:
        paged = list(store.iter_links(conn, page=3))
        assert [link.seq for link in paged] == list(range(1, 11))
        assert paged == list(store.iter_links(conn))
        assert [link.seq for link in store.iter_links(conn, start=8, page=2)] == [8, 9, 10]
        assert store.links_between(conn, 4, 6) == paged[3:6]
        assert store.hash_at(conn, 0) == GENESIS
        assert store.hash_at(conn, 7) == paged[6].hash


def test_verify_passes_a_clean_chain(engine) -> None:
    fill(engine)
    report = verify(engine)
    with engine.connect() as conn:
        assert (report.last_seq, report.last_hash) == store.head(conn)
    assert report.ok and report.checked == 12 and report.heads_checked == 0


@pytest.mark.parametrize(
    "change",
    [
        "detail = '{}'",
        "recipient = '000.00.00.H29'",
        "hash = '" + "0" * 64 + "'",
        "event = 'REJECTED'",
    ],
)
def test_verify_reports_the_first_row_changed_by_a_direct_update(engine, change) -> None:
    fill(engine)
    execute(engine, f"UPDATE audit_events SET {change} WHERE seq = 5")
    report = verify(engine)
    assert not report.ok and report.problem.seq == 5
    assert "recomputed hash differs" in report.problem.reason
    assert (report.checked, report.last_seq) == (4, 4)


def test_verify_reports_a_deleted_row_as_a_missing_link(engine) -> None:
    fill(engine)
    execute(engine, "DELETE FROM audit_events WHERE seq = 7")
    report = verify(engine)
    assert report.problem.seq == 7
    assert report.problem.reason == "missing link: expected seq 7, found 8"


def test_verify_reports_the_deletion_of_the_last_rows_against_the_head(engine) -> None:
    fill(engine)
    execute(engine, "DELETE FROM audit_events WHERE seq >= 11")
    report = verify(engine)
    assert report.problem.seq == 11
    assert report.problem.reason == "the chain ends at seq 10 but its head says 12"


def test_verify_reports_a_forged_audit_head(engine) -> None:
    fill(engine)
    execute(engine, "UPDATE audit_head SET hash = '" + "ab" * 32 + "' WHERE id = 1")
    report = verify(engine)
    assert report.checked == 12 and report.problem.seq == 13
    assert "head says 12" in report.problem.reason


def test_verify_checks_every_signed_head_with_the_callback(engine, hub_keys) -> None:
    writer, verifier = hub_keys
    fill(engine, batches=1)
    first = sign_head(engine, writer)
    fill_more(engine, 5, 8)
    second = sign_head(engine, writer)
    fill_more(engine, 9, 9)
    seen = []

    def check(row) -> str | None:
        seen.append(row.seq)
        return head_checker(verifier)(row)

    report = verify(engine, check_head=check)
    assert report.ok, report.problem
    assert (first, second, report.heads_checked, report.checked) == (4, 8, 2, 9)
    assert seen == [4, 8]


def test_verify_reports_a_signed_head_that_disagrees_with_the_chain(engine, hub_keys) -> None:
    writer, _ = hub_keys
    fill(engine, batches=1)
    sign_head(engine, writer)
    execute(engine, "UPDATE chain_heads SET hash = '" + "cd" * 32 + "'")
    report = verify(engine)
    assert report.problem.seq == 4
    assert report.problem.reason == "a signed chain head disagrees with the recomputed chain"


def test_verify_reports_a_signed_head_whose_signature_does_not_verify(engine, hub_keys) -> None:
    _, verifier = hub_keys
    other_ca = make_ca("Impostor CA")
    impostor = make_leaf("axis-hub", other_ca)
    fill(engine, batches=1)
    sign_head(engine, ReceiptWriter(Signer(impostor.key, impostor.certificate)))
    report = verify(engine, check_head=head_checker(verifier))
    assert report.problem.seq == 4
    assert report.problem.reason.startswith("the signed chain head does not verify: CERT_UNTRUSTED")


def test_verify_reports_a_signed_head_rewritten_after_signing(engine, hub_keys) -> None:
    writer, verifier = hub_keys
    fill(engine, batches=1)
    sign_head(engine, writer)
    with engine.begin() as conn:
        body = conn.execute(sa.select(ChainHead.body)).scalar_one()
        conn.execute(sa.update(ChainHead).values(body=body.replace(b"<Seq>4<", b"<Seq>3<")))
    report = verify(engine, check_head=head_checker(verifier))
    assert report.problem.seq == 4
    assert "SIGNATURE_INVALID" in report.problem.reason


def test_verify_reports_a_signed_head_beyond_the_last_event(engine, hub_keys) -> None:
    writer, _ = hub_keys
    fill(engine, batches=1)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(ChainHead).values(
                seq=99,
                hash="ef" * 32,
                signed_at=T0,
                body=writer.chain_head(seq=99, chain_hash="ef" * 32, signed_at=T0),
            )
        )
    report = verify(engine)
    assert report.problem.seq == 5
    assert report.problem.reason == "a signed chain head names seq 99, beyond the last event"


def test_concurrent_writers_produce_one_gap_free_chain_that_verifies(fresh_url) -> None:
    """Two routers (SQLite: two engines on one file; PostgreSQL: two connections) at once."""
    writers, batches, size = 2, 15, 6
    engines = [db.make_engine(fresh_url) for _ in range(writers)]
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            start.wait()
            for b in range(batches):
                with engines[index].begin() as conn:
                    store.append(
                        conn,
                        [
                            Event(
                                EventKind.RECEIVED,
                                datetime.now(UTC),
                                f"w{index}-{b}-{i}",
                                f"000.00.00.G22,2026/11/20,{index}{b:03d}{i}/W",
                                detail={"writer": index},
                            )
                            for i in range(size)
                        ],
                    )
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        with engines[0].connect() as conn:
            links = list(store.iter_links(conn))
            report = store.verify(conn)
        assert [link.seq for link in links] == list(range(1, writers * batches * size + 1))
        # Each batch's events stay together: a writer's batch is never split by the other's.
        for first in range(0, len(links), size):
            assert (
                len({link.receipt_id.rsplit("-", 1)[0] for link in links[first : first + size]})
                == 1
            )
        assert report.ok and report.checked == writers * batches * size
    finally:
        for e in engines:
            e.dispose()


TRICKY = [
    'quote " backslash \\ slash /',
    "controls \x01\x08\t\n\x0b\x0c\r\x1f and DEL \x7f",
    "Tiếng Việt: Ủy ban nhân dân tỉnh Nghệ An — “trích dẫn” 😀 \u2028\u2029",
    "",
]


def test_the_fast_path_digests_exactly_as_the_reference_for_awkward_text(engine) -> None:
    """Every event's digest as the database writes its canonical form equals chain.digest.

    (PostgreSQL text cannot hold NUL, so NUL appears only escaped, inside a detail.)
    """
    events = [
        Event(
            EventKind.REJECTED,
            T0.replace(microsecond=0) + timedelta(seconds=n),
            text[:30],
            f"000.00.00.G22,2026/11/20,{n}/{text[:150]}",
            None if n % 2 else "000.00.00.G22",
            text[-30:] or None,
            "SCHEMA_INVALID",
            detail={"reason": text, "n": n, "list": [text, None, 1.5, "NUL \x00"]},
        )
        for n, text in enumerate(TRICKY * 3)
    ]
    with engine.begin() as conn:
        links = store.append(conn, events)
    with engine.connect() as conn:
        before, digests, problem = store.event_digests(conn, 1, len(links))
        report = store.verify(conn)
    assert problem is None and before == GENESIS
    assert digests == b"".join(link_digest(link) for link in links)
    assert report.ok and report.checked == len(events)


def test_event_digests_start_from_the_stored_hash_before_the_run(engine) -> None:
    fill(engine, batches=2, size=5)
    with engine.connect() as conn:
        links = list(store.iter_links(conn))
        before, digests, problem = store.event_digests(conn, 4, 8)
        assert store.event_digests(conn, 9, 12)[2].reason == "the chain ends at seq 10, before 12"
    assert problem is None and before == links[2].hash
    assert digests == b"".join(link_digest(link) for link in links[3:8])


def test_verify_reports_two_rows_swapped_at_the_first_of_them(engine) -> None:
    fill(engine)
    with engine.begin() as conn:
        for old, new in ((5, -1), (6, 5), (-1, 6)):
            conn.execute(sa.text(f"UPDATE audit_events SET seq = {new} WHERE seq = {old}"))
    report = verify(engine)
    assert report.problem.seq == 5 and "recomputed hash differs" in report.problem.reason


def test_a_bad_signed_head_before_a_broken_link_is_reported_first(engine, hub_keys) -> None:
    _, verifier = hub_keys
    other = make_leaf("axis-hub", make_ca("Impostor CA"))
    fill(engine, batches=1)
    sign_head(engine, ReceiptWriter(Signer(other.key, other.certificate)))
    fill_more(engine, 5, 9)
    execute(engine, "UPDATE audit_events SET detail = '{}' WHERE seq = 7")
    report = verify(engine, check_head=head_checker(verifier))
    assert report.problem.seq == 4 and "CERT_UNTRUSTED" in report.problem.reason


def test_a_broken_link_before_a_bad_signed_head_is_reported_first(engine, hub_keys) -> None:
    _, verifier = hub_keys
    other = make_leaf("axis-hub", make_ca("Impostor CA"))
    fill(engine, batches=2)
    sign_head(engine, ReceiptWriter(Signer(other.key, other.certificate)))
    execute(engine, "UPDATE audit_events SET detail = '{}' WHERE seq = 3")
    report = verify(engine, check_head=head_checker(verifier))
    assert report.problem.seq == 3 and "recomputed hash differs" in report.problem.reason


@pytest.mark.parametrize(
    ("stored_at", "verdict"),
    [
        ("replace(at, ' ', 'T')", None),  # another spelling of the same moment: still intact
        ("'2026-11-20 03:04:09.999999'", "recomputed hash differs"),
        ("'not a time'", "the event cannot be read"),
        ("X'00ff'", "the event cannot be read"),
    ],
)
def test_sqlite_rows_off_the_storage_format_get_the_reference_verdict(
    engine, stored_at, verdict
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's typed columns cannot hold these")
    fill(engine)
    execute(engine, f"UPDATE audit_events SET at = {stored_at} WHERE seq = 6")
    report = verify(engine)
    if verdict is None:
        assert report.ok, report.problem
    else:
        assert report.problem.seq == 6 and verdict in report.problem.reason


def test_sqlite_a_blob_where_text_belongs_is_a_broken_link_not_a_crash(engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's typed columns cannot hold a BLOB")
    fill(engine)
    execute(engine, "UPDATE audit_events SET detail = X'7b7d' WHERE seq = 9")
    report = verify(engine)
    assert report.problem.seq == 9 and "cannot be read" in report.problem.reason
    assert report.checked == 8


def test_verify_streams_in_chunks(engine, monkeypatch) -> None:
    monkeypatch.setattr(store, "STREAM_CHUNK", 5)
    fill(engine, batches=4, size=4)
    assert verify(engine).checked == 16
    execute(engine, "DELETE FROM audit_events WHERE seq = 12")
    assert verify(engine).problem.reason == "missing link: expected seq 12, found 13"


@pytest.fixture
def ranges(monkeypatch):
    """verify() splitting even a short chain into three ranges on connections of their own."""
    monkeypatch.setattr(store, "PARALLEL_MIN_EVENTS", 0)
    return {"workers": 3}


def test_verify_in_ranges_passes_a_clean_chain_and_counts_every_head(
    engine, hub_keys, ranges
) -> None:
    writer, verifier = hub_keys
    fill(engine, batches=2)
    sign_head(engine, writer)
    fill_more(engine, 9, 14)
    sign_head(engine, writer)
    report = verify(engine, check_head=head_checker(verifier), **ranges)
    assert report.ok, report.problem
    assert (report.checked, report.heads_checked) == (14, 2)
    with engine.connect() as conn:
        assert (report.last_seq, report.last_hash) == store.head(conn)


@pytest.mark.parametrize(
    ("sql", "seq", "reason"),
    [
        ("UPDATE audit_events SET detail = '{}' WHERE seq = 9", 9, "recomputed hash differs"),
        ("DELETE FROM audit_events WHERE seq = 4", 4, "missing link: expected seq 4, found 5"),
        ("DELETE FROM audit_events WHERE seq = 5", 5, "missing link: expected seq 5, found 6"),
        ("DELETE FROM audit_events WHERE seq IN (4, 5)", 4, "expected seq 4, found 6"),
        ("DELETE FROM audit_events WHERE seq = 12", 12, "the chain ends at seq 11 but its head"),
        ("UPDATE audit_events SET hash = '" + "0" * 64 + "' WHERE seq = 8", 8, "recomputed"),
    ],
    ids=[
        "changed",
        "deleted-end-of-range",
        "deleted-start-of-range",
        "deleted-across",
        "last",
        "hash",
    ],
)
def test_verify_in_ranges_names_the_same_first_break(engine, ranges, sql, seq, reason) -> None:
    fill(engine)  # 12 events: ranges 1-4, 5-8, 9-12
    execute(engine, sql)
    report = verify(engine, **ranges)
    assert report.problem.seq == seq and reason in report.problem.reason
    single = verify(engine, workers=1)
    assert (single.problem, single.checked) == (report.problem, report.checked)


def test_verify_in_ranges_reports_the_earliest_of_several_breaks(engine, ranges) -> None:
    fill(engine)
    execute(engine, "UPDATE audit_events SET detail = '{}' WHERE seq IN (6, 11)")
    assert verify(engine, **ranges).problem.seq == 6
