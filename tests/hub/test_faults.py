"""Fault injection with real processes and the real RabbitMQ (issue #7, item 1).

Agency processes (SDK clients) send a stream of signed documents, about one in
twenty invalid on purpose, through ``axis serve`` on PostgreSQL to recipients that
consume their inboxes, and one fault strikes while it flows:

(a) a router is killed with SIGKILL and restarted;
(b) RabbitMQ is restarted (``rabbitmqctl stop_app`` / ``start_app``);
(c) the database refuses every connection for 10 s;
(d) one recipient stops consuming while the others go on, then resumes;
(e) two routers run at once and one is killed with SIGKILL.

After each run, the account (``faults_support.Run.finish``) must find nothing wrong:

- every accepted document is in every recipient's inbox, byte for byte; a repeat
  only with the same ``x-axis-receipt-id`` (counted: ``dups``);
- every invalid document got its rejection with the code it was made for;
- the audit chain verifies with its signed heads; its RECEIVED, REJECTED and
  DELIVERED events and the deliveries table match what the senders were told and
  what the recipients got (one DELIVERED event per delivery);
- ``axis.inbound`` and the quarantine are empty: every inbound message was
  acknowledged, and since every document with a RECEIVED event has all its
  deliveries in the inboxes, none was acknowledged without them.

Each fault adds its own proof: (c) nothing reaches an inbox while the database is
down; (d) the others receive everything sent while one recipient is stopped,
before it resumes; (a) and (e) the killed router had accepted documents.

Modes (the size is ``AXIS_FAULT_DOCS`` documents per fault, offered at
``AXIS_FAULT_RATE`` documents per second by three senders together):

- CI mode, the default: 600 documents per fault at 100/s (about 2 minutes for all);
- full mode, run alone on the machine (the broker restart disturbs every other
  test using RabbitMQ; the test waits up to 10 minutes for other test sessions'
  connections to close, but not in CI)::

      AXIS_FAULT_DOCS=5000 .venv/bin/pytest tests/hub/test_faults.py

The counts table is printed at the end of the module's run: documents sent,
accepted, rejected, ``rej+`` (a rejected message handled again after a crash or a
lost connection is rejected again, under a new receipt id: counted, not an error),
delivered/expected deliveries, ``dups``, lost, the chain, audit events, seconds
from the first send to the last delivery, and end-to-end latency (send to inbox).
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from faults_support import (  # noqa: E402
    Counts,
    Plan,
    Run,
    database_unavailable,
    restart_rabbitmq,
    run_fault,
    table,
    wait_for_broker_to_ourselves,
)

pytestmark = pytest.mark.slow

OUTAGE_S = 10.0
GRACE_S = 2.0


@pytest.fixture(scope="module")
def plan() -> Plan:
    """The run's size, from ``AXIS_FAULT_DOCS`` and ``AXIS_FAULT_RATE``."""
    return Plan.from_env()


@pytest.fixture(scope="module")
def fault_report(request: pytest.FixtureRequest) -> Iterator[list[Counts]]:
    """Collects each fault's counts and prints the table when the module is done."""
    rows: list[Counts] = []
    yield rows
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if rows and reporter is not None:
        # Printed past the output capture (as capsys.disabled does), so -q shows it too.
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            reporter.write_line("")
            for line in table(rows):
                reporter.write_line(line)


def account(counts: Counts, fault_report: list[Counts]) -> None:
    fault_report.append(counts)
    assert counts.problems == [], "\n".join(table([counts]))
    assert counts.accepted and counts.rejected and counts.delivered


def test_router_killed_with_sigkill_and_restarted_loses_nothing(
    pg_idle_hub, plan: Plan, fault_report: list[Counts]
) -> None:
    def inject(run: Run) -> None:
        [router] = run.routers.alive()
        run.details["killed_after"] = run.wait_recorded(0.3)
        run.routers.kill(router)
        run.routers.start()

    counts = run_fault(pg_idle_hub, plan, "(a) router kill -9", inject)
    account(counts, fault_report)
    [recorded] = counts.details["killed_routers_recorded"]
    assert 0 < recorded < counts.sent


def test_database_unavailable_for_ten_seconds_loses_nothing(
    pg_idle_hub, pg_url: str, plan: Plan, fault_report: list[Counts]
) -> None:
    def inject(run: Run) -> None:
        run.details["outage_after"] = run.wait_recorded(0.3)
        database = run.hub.engine.url.database
        with database_unavailable(pg_url, database):
            # Batches recorded before the outage may still be on their way for a moment.
            time.sleep(GRACE_S)
            before = run.arrived()
            time.sleep(OUTAGE_S - GRACE_S)
            run.details["delivered_while_down"] = run.arrived() - before
        run.details["outage_s"] = OUTAGE_S

    counts = run_fault(pg_idle_hub, plan, "(c) database down 10 s", inject)
    account(counts, fault_report)
    assert counts.details["delivered_while_down"] == 0, "delivered what it could not record"


def test_a_recipient_that_stops_consuming_blocks_no_one_and_gets_everything_later(
    pg_idle_hub, plan: Plan, fault_report: list[Counts]
) -> None:
    def inject(run: Run) -> None:
        paused, *others = run.inboxes
        run.wait_sent(0.2)
        run.pause(paused)
        run.wait_senders()
        # The others get all theirs while one inbox fills up.
        assert run.wait_delivered(others, timeout=120)
        run.details["paused_inbox_depth"] = run.queue(f"axis.inbox.{paused}")[0]
        run.resume(paused)

    counts = run_fault(pg_idle_hub, plan, "(d) recipient stops", inject)
    account(counts, fault_report)
    assert counts.details["paused_inbox_depth"] > 0
    assert counts.details["paused_recipient"]["deliveries_to_others_meanwhile"] > plan.documents / 2


def test_two_routers_one_killed_with_sigkill_the_other_finishes_everything(
    pg_idle_hub, plan: Plan, fault_report: list[Counts]
) -> None:
    def inject(run: Run) -> None:
        first, _ = run.routers.alive()
        run.details["killed_after"] = run.wait_recorded(0.3)
        run.routers.kill(first)

    counts = run_fault(pg_idle_hub, plan, "(e) 2 routers, 1 killed", inject, routers=2)
    account(counts, fault_report)
    [recorded] = counts.details["killed_routers_recorded"]
    assert 0 < recorded < counts.sent  # both routers took part


def test_rabbitmq_restarted_mid_stream_loses_nothing(
    pg_idle_hub, plan: Plan, fault_report: list[Counts]
) -> None:
    # Last in the module: it takes the broker away from everything else for a while.
    waited = wait_for_broker_to_ourselves(pg_idle_hub.broker)

    def inject(run: Run) -> None:
        run.details["restart_after"] = run.wait_recorded(0.3)
        run.details["restart_s"] = round(restart_rabbitmq(), 1)

    counts = run_fault(pg_idle_hub, plan, "(b) RabbitMQ restart", inject)
    counts.details["waited_for_other_sessions_s"] = round(waited)
    account(counts, fault_report)
    assert counts.details["sender_reconnects"] >= 1
