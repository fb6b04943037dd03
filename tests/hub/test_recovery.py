"""The router rides out a lost broker connection and a database outage (issue: nothing lost).

PostgreSQL is made to refuse connections for a few seconds while documents arrive;
the router must stop taking messages, retry, and acknowledge nothing it has not
recorded. The router's broker connection is closed under it; it must reconnect and
finish what it held.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

import schemas
from axis.audit import store as audit

pytestmark = pytest.mark.parametrize("hub", ["postgres"], indirect=True)


def _wait_for_router_connection(hub) -> list[dict]:
    with hub.broker.management() as mgmt:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = [
                c
                for c in mgmt.list_connections(vhost=hub.broker.vhost)
                if c["user"] == hub.config.broker.user
            ]
            if found:
                return found
            time.sleep(0.5)
    raise AssertionError("the router's connection never showed up")


def test_router_reconnects_after_its_broker_connection_is_closed_and_loses_nothing(hub) -> None:
    a, b = hub.register("A"), hub.register("B")
    with hub.broker.management() as mgmt:
        for connection in _wait_for_router_connection(hub):
            mgmt.close_connection(connection["name"], "test: connection lost")
    bodies = [a.sign(a.edoc([b.code])) for _ in range(20)]
    for body in bodies:
        a.publish(body)
    received = {m.body for m in b.take(20, timeout=30)}
    assert received == set(bodies)
    receipts = [hub.answer(a) for _ in bodies]
    assert all(isinstance(r, schemas.AxisReceipt) for r in receipts)


def test_database_outage_pauses_the_router_and_nothing_unrecorded_is_acknowledged(
    hub, pg_url
) -> None:
    a, b = hub.register("A"), hub.register("B")
    database = hub.engine.url.database
    admin = sa.create_engine(sa.make_url(pg_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"
                ),
                {"d": database},
            )
        bodies = [a.sign(a.edoc([b.code])) for _ in range(10)]
        for body in bodies:
            a.publish(body)
        time.sleep(3)
        assert b.take(1, timeout=0.5) == []  # nothing goes out unrecorded
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    received = {m.body for m in b.take(10, timeout=30)}
    assert received == set(bodies)
    hub.engine.dispose()
    with hub.engine.connect() as conn:
        assert audit.verify(conn).ok
        recorded = conn.execute(
            sa.text("SELECT count(*) FROM documents WHERE sender = :s"), {"s": a.code}
        )
        assert recorded.scalar_one() == 10
