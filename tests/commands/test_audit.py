"""``axis audit trail/search/stats/overdue/seed`` on a real hub, after real traffic.

One hub per backend (SQLite, PostgreSQL) runs the router; agencies send documents,
statuses, a revoke and a rejected document through the SDK, exactly as a DMS would,
then the commands run against that hub's ``axis.toml``.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import schemas
from adapters import AgencyClient, Delivery, Rejected
from axis.audit.query import vietnam_date
from axis.broker.testing import BrokerEnv
from axis.models import AuditEvent
from cli import main
from schemas.edoc import Business, BusinessDocType
from tests.conftest import fresh_pg_database

_NAME = "axis_tests_hub_support"
if _NAME in sys.modules:
    hub_support: Any = sys.modules[_NAME]
else:
    _spec = importlib.util.spec_from_file_location(
        _NAME, Path(__file__).parent.parent / "hub" / "conftest.py"
    )
    assert _spec is not None and _spec.loader is not None
    hub_support = importlib.util.module_from_spec(_spec)
    sys.modules[_NAME] = hub_support
    _spec.loader.exec_module(hub_support)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Traffic:
    """What the agencies did, to check the commands against."""

    hub: Any
    config: Path
    sender: str
    finisher: str
    """Acknowledges, accepts and completes the first document."""
    idler: str
    """Acknowledges the first document (its SDK does) and does nothing more."""
    silent: str
    """Never takes its inbox in: no 01 at all."""
    late: str
    """The document due yesterday: the finisher completes it, the idler does not."""
    quiet: str
    """A document to the silent agency."""
    revoked: str
    revoke: str
    rejected_code: str
    subject_word: str


def _take(client: AgencyClient, count: int, timeout: float = 20.0) -> list[Delivery]:
    found: list[Delivery] = []
    deadline = time.monotonic() + timeout
    for delivery in client.receive(timeout=timeout):
        found.append(delivery)
        delivery.ack()
        if len(found) >= count or time.monotonic() > deadline:
            break
    return found


def _events(hub: Any, document_id: str) -> list[tuple[str, str | None]]:
    with hub.engine.connect() as conn:
        return [
            (row.event, row.code)
            for row in conn.execute(
                sa.select(AuditEvent.event, AuditEvent.code).where(
                    AuditEvent.document_id == document_id
                )
            )
        ]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def traffic(
    request: pytest.FixtureRequest, broker: BrokerEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Traffic]:
    """A hub after a little real traffic of every kind the audit commands report."""
    folder = tmp_path_factory.mktemp("audit-hub")
    with contextlib.ExitStack() as stack:
        url = f"sqlite:///{folder / 'axis.db'}"
        if request.param == "postgres":
            url = stack.enter_context(fresh_pg_database(request.getfixturevalue("pg_url")))
        hub = hub_support._start_hub(broker, folder, url)
        try:
            yield _make_traffic(hub, folder / "axis.toml")
        finally:
            hub_support._stop_hub(hub)


def _make_traffic(hub: Any, config: Path) -> Traffic:
    a, b, c, d = (hub.register(name) for name in ("AUDA", "AUDB", "AUDC", "AUDD"))
    word = f"kiểm-toán-{secrets.token_hex(3)}"
    yesterday = vietnam_date(datetime.now(UTC)) - timedelta(days=1)
    late = a.edoc(
        [b.code, c.code],
        subject=f"Về việc {word} 100% hồ sơ",
        due_date=yesterday,
        priority=schemas.Priority.VERY_URGENT,
    )
    quiet = a.edoc([d.code], subject="Về việc báo cáo định kỳ")
    revoked = a.edoc([b.code], subject="Về việc gửi nhầm")
    revoke = a.edoc(
        [b.code],
        subject="Về việc thu hồi văn bản gửi nhầm",
        business=Business(BusinessDocType.REVOKE, "Gửi nhầm nơi nhận", revoked.document_id),
    )
    nobody = hub.broker.unique_code("NOBODY")
    with hub.client(a) as ca, hub.client(b) as cb, hub.client(c) as cc:
        ca.send(late)
        ca.send(quiet)
        ca.send(revoked)
        assert len(_take(cb, 2)) == 2  # late, revoked: the SDK acknowledges both (01)
        assert len(_take(cc, 1)) == 1
        assert cb.flush(15) and cc.flush(15)
        time.sleep(0.3)  # the time the steps take must show
        cb.send_status(late.document_id, "03", "Đã tiếp nhận")
        cb.send_status(late.document_id, "06", "Đã hoàn thành")
        ca.send(revoke)
        assert len(_take(cb, 1)) == 1 and cb.flush(15)
        with pytest.raises(Rejected) as refused:
            ca.send(a.edoc([nobody], subject=f"Về việc {word} gửi sai"))
    delivered = ["", "", "01", "01", "03", "06"]
    hub.wait_until(
        lambda: (
            sorted(
                code or "" for kind, code in _events(hub, late.document_id) if kind == "DELIVERED"
            )
            == delivered
        )
    )
    hub.wait_until(lambda: ("REVOKED", None) in _events(hub, revoked.document_id))
    return Traffic(
        hub,
        config,
        a.code,
        b.code,
        c.code,
        d.code,
        late.document_id,
        quiet.document_id,
        revoked.document_id,
        revoke.document_id,
        refused.value.code,
        word,
    )


def axis(traffic: Traffic, *args: str) -> str:
    result = CliRunner().invoke(main, ["--config", str(traffic.config), "audit", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def axis_json(traffic: Traffic, *args: str) -> Any:
    return json.loads(axis(traffic, *args, "--json"))


def test_trail_shows_receipt_deliveries_statuses_and_the_time_each_step_took(traffic) -> None:
    found = axis_json(traffic, "trail", traffic.late)
    events = found["events"]
    kinds = [(e["event"], e["code"], e["sender"], e["recipient"]) for e in events]
    t = traffic
    assert kinds[0] == ("RECEIVED", None, t.sender, None)
    for recipient in (t.finisher, t.idler):
        assert ("DELIVERED", None, t.sender, recipient) in kinds
        assert ("STATUS", "01", recipient, t.sender) in kinds
        assert ("DELIVERED", "01", recipient, t.sender) in kinds
    assert ("STATUS", "03", t.finisher, t.sender) in kinds
    assert ("STATUS", "06", t.finisher, t.sender) in kinds
    assert [e["after_s"] for e in events] == sorted(e["after_s"] for e in events)
    assert all(e["step_s"] >= 0 for e in events)
    status_03 = next(e for e in events if e["code"] == "03" and e["event"] == "STATUS")
    assert status_03["step_s"] >= 0.3  # since the finisher's 01 (its own thread)
    assert status_03["at"].endswith("+07:00")
    progress = {r["recipient"]: r for r in found["recipients"]}
    assert progress[t.finisher]["last_code"] == "06" and progress[t.finisher]["completed_at"]
    assert progress[t.idler]["last_code"] == "01" and progress[t.idler]["completed_at"] is None
    assert found["document"]["priority"] == 2 and found["document"]["due_date"]


def test_trail_of_a_revoked_document_names_the_revoke_and_the_document_acting_on_it(
    traffic,
) -> None:
    found = axis_json(traffic, "trail", traffic.revoked, "--utc")
    revoked = [e for e in found["events"] if e["event"] == "REVOKED"]
    assert len(revoked) == 1 and revoked[0]["detail"]["by"] == traffic.revoke
    assert revoked[0]["at"].endswith("Z")
    assert found["document"]["state"] == "revoked"
    assert [r["document_id"] for r in found["related"]] == [traffic.revoke]
    text = axis(traffic, "trail", traffic.revoked)
    assert "REVOKED" in text and f"acts on this: {traffic.revoke}" in text


def test_trail_of_an_unknown_document_fails_with_a_message(traffic) -> None:
    result = CliRunner().invoke(
        main, ["--config", str(traffic.config), "audit", "trail", "000.00.00.X99,2026/01/01,1/X"]
    )
    assert result.exit_code == 1 and "no audit event names" in result.output


def test_search_filters_and_outputs(traffic) -> None:
    t = traffic
    by_sender = axis_json(t, "search", "--sender", t.sender, "--event", "received")["events"]
    assert {e["document_id"] for e in by_sender} == {t.late, t.quiet, t.revoked, t.revoke}
    times = [e["at"] for e in by_sender]
    assert times == sorted(times, reverse=True)

    completed = list(
        csv.DictReader(
            io.StringIO(axis(t, "search", "--status", "06", "--sender", t.finisher, "--csv"))
        )
    )
    assert [(r["event"], r["code"], r["document_id"]) for r in completed] == [
        ("STATUS", "06", t.late)
    ]
    assert completed[0]["subject"].startswith("Về việc kiểm-toán")

    rejected = axis_json(t, "search", "--rejection", t.rejected_code, "--sender", t.sender)
    assert [e["event"] for e in rejected["events"]] == ["REJECTED"]

    to_idler = axis_json(t, "search", "--recipient", t.idler, "--event", "DELIVERED")["events"]
    assert [(e["document_id"], e["code"]) for e in to_idler] == [(t.late, None)]

    # The text matches the accepted document's subject (the rejected one has no row).
    texts = axis_json(t, "search", "--text", t.subject_word, "--event", "RECEIVED")["events"]
    assert [e["document_id"] for e in texts] == [t.late]
    assert axis_json(t, "search", "--text", "100%", "--sender", t.sender)["events"]
    assert axis_json(t, "search", "--text", "100_", "--sender", t.sender)["events"] == []
    urgent = axis_json(t, "search", "--priority", "2", "--sender", t.sender, "--event", "RECEIVED")
    assert [e["document_id"] for e in urgent["events"]] == [t.late]

    today = vietnam_date(datetime.now(UTC)).isoformat()
    first = axis_json(
        t, "search", "--sender", t.sender, "--since", today, "--until", today, "--per-page", "2"
    )
    second = axis_json(
        t, "search", "--sender", t.sender, "--since", today, "--per-page", "2", "--page", "2"
    )
    assert first["more"] and len(first["events"]) == 2
    assert {e["seq"] for e in first["events"]}.isdisjoint(e["seq"] for e in second["events"])
    tomorrow = (vietnam_date(datetime.now(UTC)) + timedelta(days=1)).isoformat()
    assert axis_json(t, "search", "--sender", t.sender, "--since", tomorrow)["events"] == []

    text = axis(t, "search", "--document", t.late, "--per-page", "3")
    assert "more: --page 2" in text and t.late in text


def test_search_refuses_contradictory_filters(traffic) -> None:
    result = CliRunner().invoke(
        main,
        [
            "--config",
            str(traffic.config),
            "audit",
            "search",
            "--status",
            "06",
            "--event",
            "RECEIVED",
        ],
    )
    assert result.exit_code == 2 and "STATUS events" in result.output
    result = CliRunner().invoke(
        main, ["--config", str(traffic.config), "audit", "search", "--since", "yesterday"]
    )
    assert result.exit_code == 2 and "not a date" in result.output


def test_stats_counts_per_agency_with_totals_csv_json_and_a_png(traffic, tmp_path) -> None:
    t = traffic
    found = axis_json(t, "stats", "--by", "day")
    rows = {
        r["agency"]: r
        for r in found["rows"]
        if r["period"] == vietnam_date(datetime.now(UTC)).isoformat()
    }
    assert rows[t.sender]["sent"] == 4 and rows[t.sender]["rejected"] == 1
    assert rows[t.finisher]["received"] == 3  # late, revoked, revoke
    assert rows[t.finisher]["acknowledged"] == 3
    assert rows[t.finisher]["median_ack_seconds"] > 0
    assert rows[t.idler]["received"] == 1 and rows[t.idler]["acknowledged"] == 1
    assert rows[t.idler]["with_due_date"] == 1 and rows[t.idler]["completed_on_time"] == 0
    assert rows[t.silent]["received"] == 1 and rows[t.silent]["acknowledged"] == 0
    assert rows[t.silent]["median_ack_seconds"] is None
    totals = found["totals"]
    assert totals["sent"] >= 4 and f"{totals['sent']:,} documents sent" in totals["text"]

    table = list(csv.DictReader(io.StringIO(axis(t, "stats", "--by", "month", "--csv"))))
    assert {"period", "agency", "sent", "received", "median_ack_seconds"} <= set(table[0])
    assert sum(int(r["sent"]) for r in table) == totals["sent"]

    chart = tmp_path / "stats.png"
    text = axis(t, "stats", "--by", "week", "--since", "2020-01-01", "--plot", str(chart))
    assert "documents sent and" in text and "since 2020-01-01" in text
    assert "Kể từ ngày 01/01/2020" in text
    data = chart.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 10_000


def test_overdue_names_who_is_late(traffic) -> None:
    t = traffic
    found = axis_json(t, "overdue", "--ack-within", "0.0001")
    late = {a["agency"]: a for a in found["agencies"]}
    assert t.finisher not in late  # completed (late, but completed), and acknowledged
    idler = late[t.idler]
    assert idler["past_due"] == 1 and idler["unacknowledged"] == 0
    [item] = idler["items"]
    assert item["document_id"] == t.late and item["reason"] == "past_due"
    assert item["last_code"] == "01" and item["late_by_seconds"] > 0
    silent = late[t.silent]
    assert silent["unacknowledged"] == 1 and silent["items"][0]["document_id"] == t.quiet
    # Judged before the document existed, nobody was late with it.
    before = axis_json(t, "overdue", "--as-of", "2020-01-01", "--ack-within", "1")
    assert before["agencies"] == []
    rows = list(csv.DictReader(io.StringIO(axis(t, "overdue", "--csv"))))
    assert (t.idler, "past_due", t.late) in {
        (r["agency"], r["reason"], r["document_id"]) for r in rows
    }
    text = axis(t, "overdue", "--ack-within", "0.0001")
    assert t.idler in text and "past due" in text


def test_seed_refuses_a_hub_that_has_history(traffic) -> None:
    result = CliRunner().invoke(
        main, ["--config", str(traffic.config), "audit", "seed", "--events", "100"]
    )
    assert result.exit_code == 1 and "empty hub database" in result.output


def test_seed_fills_an_empty_hub_whose_trail_then_verifies(traffic, tmp_path) -> None:
    if "sqlite" not in traffic.hub.config.database.url:
        pytest.skip("one backend is enough: the seeding itself is tested on both in core")
    config = traffic.config.read_text(encoding="utf-8")
    folder = traffic.config.parent
    fresh = folder / "seeded.toml"
    fresh.write_text(
        config.replace(traffic.hub.config.database.url, f"sqlite:///{tmp_path / 'seeded.db'}"),
        encoding="utf-8",
    )
    runner = CliRunner()
    seeded = runner.invoke(
        main,
        ["--config", str(fresh), "audit", "seed", "--events", "3000", "--years", "0.3", "--json"],
    )
    assert seeded.exit_code == 0, seeded.output
    report = json.loads(seeded.output)
    assert report["events"] <= 3000 and report["documents"] > 0
    verified = runner.invoke(main, ["--config", str(fresh), "audit", "verify", "--json"])
    assert verified.exit_code == 0, verified.output
    result = json.loads(verified.output)
    assert result["ok"] and result["checked"] == report["events"] and result["signed_heads"] == 1
    stats = json.loads(
        runner.invoke(main, ["--config", str(fresh), "audit", "stats", "--json"]).output
    )
    assert stats["totals"]["sent"] == report["documents"]
