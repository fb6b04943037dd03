"""``axis audit verify`` throughput on a chain of a million events, SQLite and PostgreSQL.

Run::

    .venv/bin/python benchmarks/bench_verify.py [--events 1000000] [--db sqlite,postgres]
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--baseline 50000]

For each database it builds a fresh chain with the hub's own code
(:func:`axis.audit.store.append`, in batches of 2,000 events, one transaction
each, as a busy router writes them): the events of realistic traffic (RECEIVED
with its recipients, DELIVERED to each, STATUS 01 and 06 with their deliveries, a
REJECTED now and then) with a hub-signed chain head every 10,000 events, as the
router signs them. It then times
:func:`axis.audit.verifier.verify_trail` over the whole chain (every link, every
signed head and its signature; on one connection, and split over one connection
per core as ``axis audit verify`` does on a long chain; wall time, and the CPU time
of this process, which on PostgreSQL leaves out the server's share) and, as the
baseline in the same run, the reference
algorithm verify had before (ORM pages of :class:`~axis.audit.chain.Link` through
:func:`~axis.audit.chain.verify_links`) over the first ``--baseline`` events.

The PostgreSQL database is created for the run and dropped at the end; the SQLite
file lives in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from axis import db
from axis.audit import store
from axis.audit.chain import GENESIS, Event, EventKind, verify_links
from axis.audit.verifier import verify_trail
from axis.models import ChainHead
from axis.receipts import ReceiptWriter
from signing import Signer, TrustStore, Verifier
from signing.pki import make_ca, make_leaf

HEAD_EVERY = 10_000
BATCH = 2_000
T0 = datetime.now(UTC) - timedelta(days=1)
AGENCIES = [f"000.00.00.H{n:02d}" for n in range(10, 73)] + [
    f"000.00.00.G{n:02d}" for n in range(1, 33)
]


def traffic(count: int) -> Iterator[Event]:
    """``count`` audit events of plausible hub traffic, deterministic."""
    n = 0
    at = T0
    while True:
        n += 1
        sender = AGENCIES[n % len(AGENCIES)]
        recipients = [AGENCIES[(n * 7 + k) % len(AGENCIES)] for k in range(1 + n % 3)]
        document_id = f"{sender},2026/11/20,{n}/VB-{n % 97}"
        receipt_id = str(uuid.UUID(int=n))
        sha = f"{n:064x}"
        at += timedelta(microseconds=2_345)
        events: list[Event] = []
        if n % 50 == 0:
            events.append(
                Event(
                    EventKind.REJECTED,
                    at,
                    receipt_id,
                    document_id,
                    sender,
                    code="SCHEMA_INVALID",
                    detail={
                        "message_id": receipt_id,
                        "sha256": sha,
                        "size": 4_000,
                        "type": "edoc",
                        "reason": "Element 'Subject': This element is not expected.",
                    },
                )
            )
        events.append(
            Event(
                EventKind.RECEIVED,
                at,
                receipt_id,
                document_id,
                sender,
                detail={
                    "message_id": receipt_id,
                    "recipients": recipients,
                    "sha256": sha,
                    "size": 12_345,
                    "skipped": [],
                    "type": "edoc",
                },
            )
        )
        events += [
            Event(EventKind.DELIVERED, at, receipt_id, document_id, sender, r) for r in recipients
        ]
        for code in ("01", "06"):
            events.append(
                Event(
                    EventKind.STATUS,
                    at,
                    str(uuid.uuid5(uuid.NAMESPACE_OID, f"{n}-{code}")),
                    document_id,
                    recipients[0],
                    sender,
                    code,
                    detail={
                        "message_id": "m",
                        "sha256": sha,
                        "size": 2_000,
                        "type": "status",
                        "stated_at": "2026-11-20T01:00:00.000000Z",
                    },
                )
            )
        for event in events:
            yield event
            count -= 1
            if count == 0:
                return


def build(url: str, events: int, writer: ReceiptWriter) -> float:
    """Fill the empty database at ``url`` with ``events`` events; return the seconds taken."""
    db.upgrade(url)
    engine = db.make_engine(url)
    started = time.perf_counter()
    batch: list[Event] = []
    written = signed = 0

    def flush() -> None:
        nonlocal written, signed
        with engine.begin() as conn:
            store.append(conn, batch)
            written += len(batch)
            if written - signed >= HEAD_EVERY:
                seq, chain_hash = store.head(conn)
                now = datetime.now(UTC)
                body = writer.chain_head(seq=seq, chain_hash=chain_hash, signed_at=now)
                conn.execute(
                    sa.insert(ChainHead).values(seq=seq, hash=chain_hash, signed_at=now, body=body)
                )
                signed = written
        batch.clear()

    for event in traffic(events):
        batch.append(event)
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    engine.dispose()
    return time.perf_counter() - started


def baseline_rate(url: str, events: int) -> float:
    """Events/s of the previous verify: ORM pages of Links through verify_links."""
    engine = db.make_engine(url, writer=False)
    with engine.connect() as conn:
        started = time.perf_counter()
        seq, previous, checked = 0, GENESIS, 0
        for link in store.iter_links(conn):
            seq, previous, problem = verify_links([link], after_seq=seq, after_hash=previous)
            assert problem is None
            checked += 1
            if checked == events:
                break
        seconds = time.perf_counter() - started
    engine.dispose()
    return checked / seconds


def measure(
    url: str, verifier: Verifier, workers: int | None
) -> tuple[store.VerifyReport, float, float]:
    """Run verify_trail as ``axis audit verify`` does: the report, wall and CPU seconds."""
    engine = db.make_engine(url, writer=False)
    with engine.connect() as conn:
        cpu = time.process_time()
        result = verify_trail(conn, verifier, workers=workers)
        cpu = time.process_time() - cpu
    engine.dispose()
    return result.report, result.seconds, cpu


def run(
    name: str, url: str, args: argparse.Namespace, writer: ReceiptWriter, verifier: Verifier
) -> dict[str, object]:
    print(f"[{name}] building a chain of {args.events:,} events ...", file=sys.stderr)
    built = build(url, args.events, writer)
    print(f"[{name}] built in {built:.1f} s; verifying ...", file=sys.stderr)
    runs: dict[int, list[tuple[float, float]]] = {1: [], store.default_workers(): []}
    report = None
    for _ in range(args.repeat):
        for workers, rates in runs.items():  # taking turns, so both see the same load
            report, seconds, cpu = measure(url, verifier, workers)
            assert report.ok, report.problem
            assert report.checked == args.events
            rates.append((report.checked / seconds, report.checked / cpu))
    assert report is not None
    base = baseline_rate(url, args.baseline)
    single = max(r for r, _ in runs[1])
    split = max(r for r, _ in runs[store.default_workers()])
    best = max(single, split)
    return {
        "database": name,
        "events": report.checked,
        "signed_heads": report.heads_checked,
        "build_seconds": round(built, 1),
        "verify_seconds": round(report.checked / best, 2),
        "events_per_second": round(best),
        "events_per_second_one_connection": round(single),
        f"events_per_second_{store.default_workers()}_connections": round(split),
        "runs_events_per_second": {
            str(w): [round(r) for r, _ in rates] for w, rates in runs.items()
        },
        "events_per_cpu_second_here_one_connection": round(max(c for _, c in runs[1])),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "baseline_events_per_second": round(base),
        "speedup": round(best / base, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--baseline",
        type=int,
        default=50_000,
        help="events timed with the previous algorithm (it is slow)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    ca = make_ca("Bench CA")
    hub = make_leaf("axis-hub", ca)
    writer = ReceiptWriter(Signer(hub.key, hub.certificate))
    verifier = Verifier(TrustStore([ca.certificate]))
    results = []
    for name in args.db.split(","):
        if name == "sqlite":
            with tempfile.TemporaryDirectory() as folder:
                url = f"sqlite:///{Path(folder) / 'axis.db'}"
                results.append(run(name, url, args, writer, verifier))
        elif name == "postgres":
            maintenance = sa.make_url(args.pg_url)
            database = f"{maintenance.database}_bench_verify_{secrets.token_hex(3)}"
            admin = sa.create_engine(maintenance, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
            try:
                url = maintenance.set(database=database).render_as_string(hide_password=False)
                results.append(run(name, url, args, writer, verifier))
            finally:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                admin.dispose()
        else:
            parser.error(f"unknown database {name!r}: sqlite or postgres")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
