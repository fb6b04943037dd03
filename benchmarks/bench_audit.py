"""Auditors' queries on a big history (``axis audit trail/search/stats/overdue``), both databases.

Run::

    .venv/bin/python benchmarks/bench_audit.py --events 10000000 [--db sqlite,postgres]
        [--sqlite-path /tmp/axis_bench_audit.db] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--repeat 7] [--reuse] [--keep]

For each database it seeds ``--events`` audit events of synthetic history with
:func:`axis.audit.seed.seed` (three years of documents between the 95 agencies,
deliveries, statuses, rejections, revokes; the real hash chain), timing the load
and the index build, unless ``--reuse`` finds a database already seeded with at
least that many events. It then runs each query variant ``--repeat`` times through
the functions the commands call (:mod:`axis.audit.query`) and prints the median
and the fastest run in milliseconds, warm (the first run is not counted), beside
the issue's targets: ``trail`` under 50 ms, the first page of ``search`` under
200 ms, ``stats --by month`` for one year under 2 s.

The PostgreSQL database (``axis_bench_audit``) is created for the run and dropped
at the end, and the SQLite file deleted, unless ``--keep``. Ten million events
take about 10 GB on each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from axis import db
from axis.audit import query
from axis.audit.seed import SeedOptions, seed

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_NAME = "axis_bench_audit"
TARGETS = {"trail": 50.0, "search": 200.0, "stats month": 2000.0}


@dataclass
class Timing:
    """One query variant on one database."""

    name: str
    median_ms: float
    best_ms: float
    rows: int


def timed(function: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Median and best wall time in ms of ``function`` after one warm-up run; and its result."""
    result = function()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), min(samples), result


def size(result: Any) -> int:
    """How many rows a query's result holds."""
    if isinstance(result, query.Trail):
        return len(result.steps)
    if isinstance(result, query.SearchPage):
        return len(result.hits)
    if isinstance(result, query.StatsReport):
        return len(result.rows)
    if isinstance(result, list):
        return sum(len(a.items) for a in result)
    return 0


def samples_from(conn: sa.Connection) -> dict[str, Any]:
    """Real values to query with: documents, agencies and times from the seeded history."""
    end = conn.execute(sa.text("SELECT max(received_at) FROM documents")).scalar_one()
    if isinstance(end, str):
        end = datetime.fromisoformat(end)
    end = end.replace(tzinfo=UTC)
    typical = conn.execute(
        sa.text(
            "SELECT d.document_id FROM documents d WHERE d.received_at < :t "
            "AND d.business_type = 0 ORDER BY d.received_at DESC LIMIT 1"
        ),
        {"t": (end - timedelta(days=200)).replace(tzinfo=None)},
    ).scalar_one()
    directive = conn.execute(
        sa.text(
            "SELECT document_id FROM documents WHERE steering_type = 2 "
            "ORDER BY received_at DESC LIMIT 1"
        )
    ).scalar()
    return {"end": end, "typical": typical, "directive": directive}


def variants(s: dict[str, Any]) -> list[tuple[str, Callable[[sa.Connection], Any]]]:
    """The query variants, each a function of a connection."""
    end: datetime = s["end"]
    year_ago = end - timedelta(days=365)
    sender, recipient = "000.00.00.G22", "000.00.00.H41"
    found: list[tuple[str, Callable[[sa.Connection], Any]]] = [
        ("trail: a typical document", lambda c: query.trail(c, s["typical"])),
    ]
    if s["directive"]:
        found.append(("trail: a directive to @provinces", lambda c: query.trail(c, s["directive"])))

    def page(**where: Any) -> Callable[[sa.Connection], Any]:
        return lambda c: query.search(c, query.SearchFilter(**where))

    found += [
        ("search: no filter", page()),
        ("search: --sender", page(sender=sender)),
        ("search: --recipient", page(recipient=recipient)),
        ("search: --status 06", page(status_code="06")),
        ("search: --rejection SIGNATURE_INVALID", page(rejection_code="SIGNATURE_INVALID")),
        ("search: --event REVOKED", page(event="REVOKED")),
        ("search: --type 3", page(doc_type=3)),
        ("search: --priority 4", page(priority=4)),
        ("search: --text 'thiên tai'", page(text="thiên tai")),
        ("search: --text 'Quảng Ninh'", page(text="Quảng Ninh")),
        (
            "search: --since/--until one day a year ago",
            page(since=year_ago, until=year_ago + timedelta(days=1)),
        ),
        (
            "search: --sender --since/--until one month",
            page(sender=recipient, since=year_ago, until=year_ago + timedelta(days=30)),
        ),
        (
            "search: --recipient --status 01 one month",
            page(
                recipient=sender,
                status_code="01",
                since=year_ago,
                until=year_ago + timedelta(days=30),
            ),
        ),
        (
            "search: --text (no match) one week",
            page(text="không có", since=year_ago, until=year_ago + timedelta(days=7)),
        ),
        (
            "stats month: one year",
            lambda c: query.stats(c, query.StatsQuery("month", year_ago, end)),
        ),
        (
            "stats day: one month",
            lambda c: query.stats(c, query.StatsQuery("day", end - timedelta(days=30), end)),
        ),
        (
            "stats week: one quarter",
            lambda c: query.stats(c, query.StatsQuery("week", end - timedelta(days=91), end)),
        ),
        ("overdue: past due", lambda c: query.overdue(c, query.OverdueQuery(end))),
        (
            "overdue: past due + no 01 within 24 h",
            lambda c: query.overdue(c, query.OverdueQuery(end, timedelta(hours=24))),
        ),
    ]
    return found


def seeded_events(url: str) -> int:
    """How many audit events the database at ``url`` holds (0 when it has no schema)."""
    engine = db.make_engine(url, writer=False)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("audit_head"):
                return 0
            return conn.execute(sa.text("SELECT seq FROM audit_head")).scalar() or 0
    finally:
        engine.dispose()


def prepare(url: str, events: int, reuse: bool) -> dict[str, Any]:
    """Seed the database at ``url`` (or reuse it); what the seeding took."""
    if reuse and seeded_events(url) >= events * 0.99:
        db.upgrade(url)
        return {"seeded": False, "events": seeded_events(url)}
    db.upgrade(url)
    engine = db.make_engine(url)
    try:
        started = time.perf_counter()

        def progress(done: int) -> None:
            print(
                f"\r  {done:,} events, {time.perf_counter() - started:.0f}s",
                end="",
                file=sys.stderr,
            )

        report = seed(engine, SeedOptions(events=events), progress=progress)
        print(file=sys.stderr)
    finally:
        engine.dispose()
    return {
        "seeded": True,
        "events": report.events,
        "documents": report.documents,
        "statuses": report.statuses,
        "deliveries": report.deliveries,
        "load_s": round(report.load_seconds, 1),
        "index_s": round(report.index_seconds, 1),
    }


def measure(url: str, repeat: int) -> list[Timing]:
    """Each query variant against the database at ``url``."""
    engine = db.make_engine(url, writer=False)
    timings = []
    try:
        with engine.connect() as conn:
            s = samples_from(conn)
            for name, function in variants(s):
                median, best, result = timed(lambda f=function: f(conn), repeat)
                timings.append(Timing(name, median, best, size(result)))
                print(f"  {name:<48} {median:9.1f} ms", file=sys.stderr)
                conn.rollback()
    finally:
        engine.dispose()
    return timings


def target_of(name: str) -> str:
    for prefix, target in TARGETS.items():
        if name.startswith(prefix):
            return f"< {target:,.0f}"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--sqlite-path", type=Path, default=Path("/tmp/axis_bench_audit.db"))
    parser.add_argument("--pg-url", default=DEFAULT_PG, help="a maintenance URL (CREATE DATABASE)")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--reuse", action="store_true", help="use an already seeded database")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    backends = [b.strip() for b in args.db.split(",") if b.strip()]
    results: dict[str, dict[str, Any]] = {}
    for backend in backends:
        print(f"{backend}:", file=sys.stderr)
        if backend == "sqlite":
            url = f"sqlite:///{args.sqlite_path}"
            try:
                seeding = prepare(url, args.events, args.reuse)
                results[backend] = {"seeding": seeding, "timings": measure(url, args.repeat)}
            finally:
                if not args.keep:
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{args.sqlite_path}{suffix}").unlink(missing_ok=True)
        elif backend == "postgres":
            maintenance = sa.make_url(args.pg_url)
            admin = sa.create_engine(maintenance, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                exists = conn.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": PG_NAME}
                ).scalar()
                if not exists:
                    conn.execute(sa.text(f'CREATE DATABASE "{PG_NAME}"'))
            url = maintenance.set(database=PG_NAME).render_as_string(hide_password=False)
            try:
                seeding = prepare(url, args.events, args.reuse)
                results[backend] = {"seeding": seeding, "timings": measure(url, args.repeat)}
            finally:
                if not args.keep:
                    with admin.connect() as conn:
                        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)'))
                admin.dispose()
        else:
            parser.error(f"unknown database {backend!r}: sqlite or postgres")
    if args.json:
        print(
            json.dumps(
                {
                    b: {"seeding": r["seeding"], "timings": [vars(t) for t in r["timings"]]}
                    for b, r in results.items()
                },
                indent=2,
            )
        )
        return 0
    print(f"\n{args.events:,} events; median of {args.repeat} warm runs (best in brackets), ms\n")
    names = [t.name for t in next(iter(results.values()))["timings"]] if results else []
    header = "| query | " + " | ".join(backends) + " | target |"
    print(header)
    print("|" + "---|" * (len(backends) + 2))
    for i, name in enumerate(names):
        cells = []
        for backend in backends:
            t = results[backend]["timings"][i]
            cells.append(f"{t.median_ms:,.1f} ({t.best_ms:,.1f})")
        print(f"| {name} | " + " | ".join(cells) + f" | {target_of(name)} |")
    for backend in backends:
        s = results[backend]["seeding"]
        if s.get("seeded"):
            print(
                f"\n{backend}: seeded {s['events']:,} events ({s['documents']:,} documents, "
                f"{s['statuses']:,} statuses, {s['deliveries']:,} deliveries) in "
                f"{s['load_s'] + s['index_s']:,.0f} s: load {s['load_s']:,.0f} s, "
                f"indexes and statistics {s['index_s']:,.0f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
