"""Test-session fixtures shared by the whole suite.

Integration tests run against the real RabbitMQ and PostgreSQL (``make services``
starts both) and each test session works in throw-away resources of its own, so
sessions running at the same time on one machine never see each other:

``broker`` (session)
    A fresh RabbitMQ vhost ``axis-test-<hex>``, as a :class:`axis.broker.testing.BrokerEnv`. Use
    ``broker.amqp_url`` for pika, ``broker.management()`` for the management API.
    RabbitMQ users are broker-wide, not per vhost: tag every user you create with
    ``broker.user_tag`` (``mgmt.put_user(name, pw, tags=[broker.user_tag])``) and
    make its name unique to the session (``broker.unique_code("A")`` for agencies),
    and teardown deletes it. The vhost is shared by every test of the session; a
    test that leaves messages behind, or needs an empty broker, takes a vhost of
    its own with ``broker.derive("name")``. Tests using it are marked
    ``integration``.
``pg_url`` (session)
    The SQLAlchemy URL (``str``) of a fresh PostgreSQL database
    ``axis_test_<hex>``, dropped at the end. Tests using it are marked ``postgres``
    and ``integration``.
``sqlite_url`` (function)
    ``sqlite:///<tmp_path>/axis.db``, a new file per test.
``db_url`` (function, parametrized)
    Runs the test twice, with ``sqlite_url`` and with ``pg_url`` (the latter marked
    ``postgres``), for code that must behave the same on both.

Environment (defaults in brackets):

- ``AXIS_TEST_AMQP_URL`` [``amqp://guest:guest@127.0.0.1:5672/``]: the broker and the
  admin credentials, which are used for the management API too;
- ``AXIS_TEST_MANAGEMENT_URL`` [``http://127.0.0.1:15672``];
- ``AXIS_TEST_PG_URL`` [``postgresql+psycopg://postgres@127.0.0.1:5432/test``]: a
  maintenance connection allowed to CREATE and DROP DATABASE.

A service that does not answer fails the tests that need it, with a message saying
how to start it; it never skips them, so CI cannot pass without running them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from axis.broker.management import ManagementError
from axis.broker.testing import BrokerEnv, amqp_url_with_vhost

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_MANAGEMENT_URL = "http://127.0.0.1:15672"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

START_SERVICES = "Start the services with `make services` (scripts/services.sh)."


@pytest.fixture(scope="session")
def session_id() -> str:
    """Eight hex digits naming this session's vhost, users' tag and database."""
    return secrets.token_hex(4)


@pytest.fixture(scope="session")
def broker(session_id: str) -> Iterator[BrokerEnv]:
    """A fresh vhost on the real RabbitMQ; see the module docstring."""
    base_url = os.environ.get("AXIS_TEST_AMQP_URL", DEFAULT_AMQP_URL)
    management_url = os.environ.get("AXIS_TEST_MANAGEMENT_URL", DEFAULT_MANAGEMENT_URL)
    parts = urlsplit(base_url)
    admin_user = unquote(parts.username or "guest")
    admin_password = unquote(parts.password or "guest")
    vhost = f"axis-test-{session_id}"
    env = BrokerEnv(
        amqp_url=amqp_url_with_vhost(base_url, vhost),
        management_url=management_url,
        admin_user=admin_user,
        admin_password=admin_password,
        vhost=vhost,
        user_tag=vhost,
    )

    with env.management() as mgmt:
        try:
            mgmt.overview()
        except ManagementError as exc:
            _unusable(f"RabbitMQ management API: {exc}")
        try:
            mgmt.create_vhost(vhost)
            # The API already grants the creator access; say so rather than rely on it.
            mgmt.set_permissions(vhost, admin_user, ".*", ".*", ".*")
            _check_amqp(env.amqp_url)
            yield env
        finally:
            for name in mgmt.list_vhosts():
                if name == vhost or name.startswith(vhost + "-"):
                    mgmt.delete_vhost(name)
            for user in mgmt.list_users():
                if env.user_tag in user.get("tags", []):
                    mgmt.delete_user(user["name"])


def _unusable(problem: str) -> NoReturn:
    """Fail (never skip) the tests that need a service that does not answer."""
    # Hide the traceback and the chained exception: the message says it all.
    __tracebackhide__ = True
    raise pytest.fail.Exception(f"{problem}\n{START_SERVICES}", pytrace=False) from None


def _check_amqp(url: str) -> None:
    """Fail the session early if AMQP itself does not answer on the new vhost."""
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = 5
    try:
        pika.BlockingConnection(params).close()
    except pika.exceptions.AMQPError as exc:
        _unusable(f"RabbitMQ AMQP at {params.host}:{params.port}: {exc!r}")


@contextlib.contextmanager
def _pg_database(maintenance: sa.URL, name: str) -> Iterator[str]:
    """Database ``name`` created beside ``maintenance``; its URL; dropped on exit."""
    # CREATE/DROP DATABASE cannot run inside a transaction. The engine may sit idle
    # for a whole session before the DROP: check its connection first.
    engine = sa.create_engine(maintenance, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except BaseException:
        engine.dispose()
        raise
    try:
        yield maintenance.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            # FORCE: a test that leaked a connection must not leave the database behind.
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(scope="session")
def pg_url(session_id: str) -> Iterator[str]:
    """A fresh PostgreSQL database for the session; see the module docstring."""
    maintenance = make_url(os.environ.get("AXIS_TEST_PG_URL", DEFAULT_PG_URL))
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(_pg_database(maintenance, f"axis_test_{session_id}"))
        except sa.exc.OperationalError as exc:
            where = maintenance.render_as_string(hide_password=True)
            _unusable(f"PostgreSQL at {where}: {exc.orig}")
        yield url


@contextlib.contextmanager
def fresh_pg_database(pg_url: str, label: str = "") -> Iterator[str]:
    """A new PostgreSQL database beside the session's; its URL; dropped on exit."""
    maintenance = sa.make_url(pg_url)
    name = f"{maintenance.database}_{label + '_' if label else ''}{secrets.token_hex(3)}"
    with _pg_database(maintenance, name) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file of its own for this test."""
    return f"sqlite:///{tmp_path / 'axis.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """The test runs once on SQLite and once on PostgreSQL."""
    fixture = "pg_url" if request.param == "postgres" else "sqlite_url"
    url: str = request.getfixturevalue(fixture)
    return url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the services they need, so ``-m`` selects them."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        callspec = getattr(item, "callspec", None)
        uses_postgres = "pg_url" in names or (
            "db_url" in names
            and callspec is not None
            and callspec.params.get("db_url") == "postgres"
        )
        if "broker" in names or uses_postgres:
            item.add_marker(pytest.mark.integration)
        if uses_postgres:
            item.add_marker(pytest.mark.postgres)
