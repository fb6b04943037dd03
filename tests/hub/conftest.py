"""A real hub for end-to-end tests: its own vhost, database, CA, agencies and router.

The router runs in a thread of the test process against the real RabbitMQ; agencies
are registered with the registry and topology functions directly and talk to the hub
over AMQP with their own credentials, exactly as PROTOCOL.md describes.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika
import pytest
import sqlalchemy as sa

import schemas
from adapters import AgencyClient
from axis import db, registry
from axis.broker.testing import BrokerEnv
from axis.broker.topology import (
    provision_agency_user,
    provision_hub,
    provision_hub_user,
    provision_inbox,
)
from axis.config import Config, load
from axis.router import Router
from axis.service import build_pipeline
from schemas.samples import sample_edoc
from signing import Signer
from signing.pki import CertifiedKey, cert_pem, key_pem, make_ca, make_leaf
from tests.conftest import fresh_pg_database

HUB_NS = "urn:axis:hub:1"


@dataclass
class Message:
    """A message taken from an inbox."""

    type: str
    body: bytes
    headers: dict
    message_id: str | None
    correlation_id: str | None
    user_id: str | None


@dataclass
class Agency:
    """A registered agency: its code, broker login and signing key."""

    code: str
    password: str
    signer: Signer
    url: str
    _connection: pika.BlockingConnection | None = field(default=None, repr=False)

    def channel(self) -> pika.adapters.blocking_connection.BlockingChannel:
        """A channel on this agency's own connection (opened on first use)."""
        if self._connection is None or self._connection.is_closed:
            self._connection = pika.BlockingConnection(pika.URLParameters(self.url))
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
        return self._channel

    def publish(
        self,
        body: bytes,
        *,
        type: str = "edoc",
        user_id: str | None = "",
        message_id: str | None = None,
        content_type: str = "application/xml",
    ) -> str:
        """Publish ``body`` to ``axis.submit`` as PROTOCOL section 3 says; return the message id."""
        message_id = message_id or str(uuid.uuid4())
        self.channel().basic_publish(
            "axis.submit",
            "",
            body,
            pika.BasicProperties(
                delivery_mode=2,
                content_type=content_type,
                type=type,
                message_id=message_id,
                user_id=self.code if user_id == "" else user_id,
            ),
            mandatory=True,
        )
        return message_id

    def sign(self, document: schemas.Edoc | schemas.Status) -> bytes:
        """The document signed with this agency's key."""
        return self.signer.sign(schemas.to_element(document))

    def edoc(self, recipients: list[str], number: int | None = None, **kwargs) -> schemas.Edoc:
        """A realistic unsigned edoc from this agency."""
        return sample_edoc(
            self.code, recipients, document_number=number or secrets.randbelow(10**6), **kwargs
        )

    def take(self, count: int = 1, timeout: float = 15.0) -> list[Message]:
        """Take ``count`` messages from this agency's inbox, waiting up to ``timeout`` seconds."""
        channel = self.channel()
        found: list[Message] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            method, props, body = channel.basic_get(f"axis.inbox.{self.code}", auto_ack=True)
            if method is None:
                self._connection.sleep(0.02)
                continue
            found.append(
                Message(
                    props.type,
                    body,
                    dict(props.headers or {}),
                    props.message_id,
                    props.correlation_id,
                    props.user_id,
                )
            )
        return found

    def close(self) -> None:
        """Close this agency's connection (one the broker already dropped is fine)."""
        if self._connection is not None and self._connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError):
                self._connection.close()


@dataclass
class Hub:
    """A running hub and what a test needs to drive it."""

    config: Config
    broker: BrokerEnv
    ca: CertifiedKey
    engine: sa.Engine
    router: Router | None
    thread: threading.Thread | None
    agencies: dict[str, Agency] = field(default_factory=dict)

    def register(
        self, name: str, *, kind: str = "ministry", groups: tuple[str, ...] = ()
    ) -> Agency:
        """Register a new agency (registry, certificate, broker user, inbox) and return it.

        Its code is ``name`` made unique to the session, so tests sharing a hub never
        share an agency.
        """
        # The hub's vhost suffix keeps codes apart from other hubs' and other tests' of
        # the session: agency users are broker-wide.
        code = self.broker.unique_code(
            f"{name}{len(self.agencies)}.{self.broker.vhost[-6:].upper()}"
        )
        leaf = make_leaf(code, self.ca)
        password = secrets.token_urlsafe(16)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            registry.add_agency(conn, code, f"Agency {code}", kind, now)
            registry.add_certificate(conn, code, leaf.certificate, now)
            for group in groups:
                registry.set_group(conn, group, [code])
        with self.broker.management() as mgmt:
            provision_agency_user(
                mgmt, self.broker.vhost, code, password, tags=(self.broker.user_tag,)
            )
            provision_inbox(mgmt, self.broker.vhost, code)
        agency = Agency(
            code,
            password,
            Signer(leaf.key, leaf.certificate),
            self.broker.amqp_url_for(code, password),
        )
        self.agencies[code] = agency
        return agency

    def client(self, agency: Agency, **options: Any) -> AgencyClient:
        """An SDK client for ``agency``: trusts the hub's CA, pins the hub's certificate."""
        options.setdefault("reconnect_timeout", 60.0)
        return AgencyClient(
            agency.code,
            amqp_url=self.broker.amqp_url,
            password=agency.password,
            key=agency.signer.key,
            certificate=agency.signer.certificate,
            trust_anchors=[self.ca.certificate],
            hub_certificate=self.config.signing.certificate,
            **options,
        )

    def suspend(self, code: str) -> None:
        """Suspend an agency in the registry."""
        with self.engine.begin() as conn:
            registry.set_state(conn, code, registry.SUSPENDED, datetime.now(UTC))

    def answer(self, agency: Agency) -> schemas.AxisReceipt | schemas.AxisRejection:
        """The next receipt or rejection in ``agency``'s inbox, parsed."""
        [message] = agency.take()
        if message.type == "rejection":
            return schemas.parse_rejection(message.body)
        assert message.type == "receipt", message.type
        return schemas.parse_receipt(message.body)

    def wait_until(self, predicate, timeout: float = 15.0) -> None:
        """Poll ``predicate`` until it holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for the hub")
            time.sleep(0.05)


def _start_hub(broker: BrokerEnv, folder: Path, url: str, *, start_router: bool = True) -> Hub:
    env = broker.derive(secrets.token_hex(3))
    ca = make_ca("Axis Test CA")
    hub_leaf = make_leaf("axis-hub", ca)
    (folder / "pki").mkdir(parents=True)
    (folder / "pki" / "ca.pem").write_bytes(cert_pem(ca.certificate))
    (folder / "pki" / "hub.pem").write_bytes(cert_pem(hub_leaf.certificate))
    (folder / "pki" / "hub.key").write_bytes(key_pem(hub_leaf.key))
    hub_user = f"axis-hub-{env.vhost[-15:]}"
    hub_password = secrets.token_urlsafe(16)
    with env.management() as mgmt:
        provision_hub(mgmt, env.vhost)
        provision_hub_user(mgmt, env.vhost, hub_password, name=hub_user, tags=(broker.user_tag,))
    (folder / "hub-password").write_text(hub_password)
    # A real axis.toml, so a test can also run the hub as `axis --config ... serve`.
    (folder / "axis.toml").write_text(
        f"""
[database]
url = "{url}"

[broker]
url = "amqp://127.0.0.1:5672/"
vhost = "{env.vhost}"
user = "{hub_user}"
password_file = "hub-password"

[trust]
anchors = ["pki/ca.pem"]

[signing]
key = "pki/hub.key"
certificate = "pki/hub.pem"

[hub]
archive_dir = "archive"
max_message_bytes = {2 * 1024 * 1024}

[router]
batch_wait_ms = 1
chain_head_interval_s = 2

[log]
format = "json"
""",
        encoding="utf-8",
    )
    config = load(folder / "axis.toml", env={})
    db.upgrade(url)
    router = thread = None
    if start_router:
        router = Router(config, build_pipeline(config))
        router.pipeline.registry.ttl = 0  # tests change the registry and send at once
        thread = threading.Thread(target=router.run, kwargs={"install_signals": False}, daemon=True)
        thread.start()
    return Hub(config, env, ca, db.make_engine(url), router, thread=thread)


def _stop_hub(hub: Hub) -> None:
    for agency in hub.agencies.values():
        agency.close()
    if hub.router is not None and hub.thread is not None:
        hub.router.stop()
        hub.thread.join(timeout=30)
        hub.router.pipeline.engine.dispose()
    hub.engine.dispose()
    with hub.broker.management() as mgmt:
        # Quorum queues are Raft groups: leaving hundreds behind slows the broker for
        # every later test, so each hub removes its vhost and users as soon as it is done.
        mgmt.delete_vhost(hub.broker.vhost)
        for code in hub.agencies:
            mgmt.delete_user(code)


@pytest.fixture(scope="module", params=["sqlite"])
def hub(
    broker: BrokerEnv, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Hub]:
    """A hub shared by a test module (SQLite, or PostgreSQL when parametrized so).

    Tests keep out of each other's way by registering agencies of their own
    (:meth:`Hub.register` gives each a code unique to the session).
    """
    folder = tmp_path_factory.mktemp("hub")
    url = (
        request.getfixturevalue("pg_fresh_url")
        if request.param == "postgres"
        else f"sqlite:///{folder / 'axis.db'}"
    )
    the_hub = _start_hub(broker, folder, url)
    try:
        yield the_hub
    finally:
        _stop_hub(the_hub)


@pytest.fixture
def fresh_hub(broker: BrokerEnv, tmp_path: Path) -> Iterator[Hub]:
    """A hub of this test's own, for tests that tamper with its database."""
    the_hub = _start_hub(broker, tmp_path, f"sqlite:///{tmp_path / 'axis.db'}")
    try:
        yield the_hub
    finally:
        _stop_hub(the_hub)


@pytest.fixture(scope="module")
def pg_fresh_url(pg_url: str) -> Iterator[str]:
    """A PostgreSQL database of this test's own (the session's is shared)."""
    with fresh_pg_database(pg_url) as url:
        yield url


@pytest.fixture
def idle_hub(broker: BrokerEnv, tmp_path: Path) -> Iterator[Hub]:
    """A hub set up (vhost, database, CA, config file) with no router running: tests
    start ``axis serve`` themselves, as separate processes they can kill."""
    the_hub = _start_hub(broker, tmp_path, f"sqlite:///{tmp_path / 'axis.db'}", start_router=False)
    try:
        yield the_hub
    finally:
        _stop_hub(the_hub)


@pytest.fixture
def pg_idle_hub(broker: BrokerEnv, tmp_path: Path, pg_url: str) -> Iterator[Hub]:
    """Like ``idle_hub``, on a PostgreSQL database of this test's own: for several
    ``axis serve`` processes at once and for database outages."""
    with fresh_pg_database(pg_url) as url:
        the_hub = _start_hub(broker, tmp_path, url, start_router=False)
        try:
            yield the_hub
        finally:
            _stop_hub(the_hub)
