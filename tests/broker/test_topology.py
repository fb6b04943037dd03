"""PROTOCOL section 2 on the real RabbitMQ: names, declarations and who may do what.

The isolation tests log in as agency users created by ``provision_agency_user`` and
check that the broker itself refuses what an agency must not do.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from axis.broker.testing import BrokerEnv
from axis.broker.topology import (
    DELIVER_EXCHANGE,
    INBOUND_QUEUE,
    QUARANTINE_QUEUE,
    SUBMIT_EXCHANGE,
    agency_permissions,
    declare_hub_topology,
    declare_inbox,
    hub_permissions,
    inbox_queue,
    provision_agency_user,
    provision_hub,
    provision_hub_user,
    provision_inbox,
    remove_agency_user,
    remove_inbox,
    validate_agency_code,
)

ACCESS_REFUSED = 403
PRECONDITION_FAILED = 406


def connect(url: str) -> BlockingConnection:
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = 5
    return BlockingConnection(params)


def properties(user_id: str) -> pika.BasicProperties:
    """AMQP properties of an agency's publication, as PROTOCOL section 3 says."""
    return pika.BasicProperties(
        delivery_mode=2,
        content_type="application/xml",
        type="edoc",
        message_id=str(uuid.uuid4()),
        user_id=user_id,
    )


def refused_with(code: int, excinfo: pytest.ExceptionInfo[BaseException]) -> bool:
    exc = excinfo.value
    assert isinstance(exc, pika.exceptions.ChannelClosedByBroker), repr(exc)
    return bool(exc.reply_code == code)


# Pure functions: names and permission regexes.


@pytest.mark.parametrize("code", ["000.00.00.G22", "A", "9" * 35, "..."])
def test_valid_agency_codes_are_accepted(code: str) -> None:
    assert validate_agency_code(code) == code
    assert inbox_queue(code) == f"axis.inbox.{code}"


@pytest.mark.parametrize(
    "code", ["", "g22", "A B", "A-B", "A\n", "A*", "9" * 36, "Ä", "A$", "(A|B)"]
)
def test_invalid_agency_codes_are_refused(code: str) -> None:
    with pytest.raises(ValueError):
        validate_agency_code(code)
    with pytest.raises(ValueError):
        agency_permissions(code)


def test_agency_permissions_are_exactly_those_of_the_protocol() -> None:
    assert agency_permissions("000.00.00.G22") == (
        r"^$",
        r"^axis\.submit$",
        r"^axis\.inbox\.000\.00\.00\.G22$",
    )


def test_agency_read_permission_escapes_dots() -> None:
    _, _, read = agency_permissions("000.00.00.G22")
    assert re.search(read, "axis.inbox.000.00.00.G22")
    for other in (
        "axis.inbox.000X00.00.G22",
        "axis.inbox.000.00.00XG22",
        "axisXinboxX000.00.00.G22",
    ):
        assert not re.search(read, other)
    assert not re.search(read, "axis.inbox.000.00.00.G220")


def test_hub_permissions_cover_its_work_and_no_inbox_reads() -> None:
    configure, write, read = hub_permissions()
    for name in (SUBMIT_EXCHANGE, INBOUND_QUEUE, DELIVER_EXCHANGE, QUARANTINE_QUEUE):
        assert re.search(configure, name)
    assert re.search(configure, inbox_queue("000.00.00.G22"))
    for name in ("amq.default", DELIVER_EXCHANGE, INBOUND_QUEUE, inbox_queue("A.B")):
        assert re.search(write, name)
    assert not re.search(write, SUBMIT_EXCHANGE)
    for name in (INBOUND_QUEUE, SUBMIT_EXCHANGE, DELIVER_EXCHANGE):
        assert re.search(read, name)
    for name in (inbox_queue("A"), QUARANTINE_QUEUE, "amq.default", "axis.inbound2"):
        assert not re.search(read, name)


# Declarations, checked through the management API.


@pytest.fixture(scope="module")
def declared(broker: BrokerEnv) -> BrokerEnv:
    """A vhost of its own where the hub topology was declared twice over AMQP."""
    env = broker.derive("declared")
    with connect(env.amqp_url) as conn:
        channel = conn.channel()
        for _ in range(2):
            declare_hub_topology(channel)
            declare_inbox(channel, "000.00.00.G22")
    return env


def test_declared_exchanges_have_the_protocol_types(declared: BrokerEnv) -> None:
    with declared.management() as mgmt:
        submit = mgmt.exchange(declared.vhost, SUBMIT_EXCHANGE)
        deliver = mgmt.exchange(declared.vhost, DELIVER_EXCHANGE)
    assert (submit["type"], submit["durable"], submit["auto_delete"]) == ("fanout", True, False)
    assert (deliver["type"], deliver["durable"], deliver["auto_delete"]) == ("direct", True, False)


@pytest.mark.parametrize("queue", [INBOUND_QUEUE, QUARANTINE_QUEUE, "axis.inbox.000.00.00.G22"])
def test_declared_queues_are_durable_quorum_queues(declared: BrokerEnv, queue: str) -> None:
    with declared.management() as mgmt:
        info = mgmt.queue(declared.vhost, queue)
    assert info["type"] == "quorum"
    assert info["durable"] is True
    assert info["arguments"] == {"x-queue-type": "quorum"}


def test_declared_bindings_are_the_protocol_ones_and_not_doubled(declared: BrokerEnv) -> None:
    with declared.management() as mgmt:
        inbound = mgmt.list_bindings(declared.vhost, SUBMIT_EXCHANGE, INBOUND_QUEUE)
        inbox = mgmt.list_bindings(declared.vhost, DELIVER_EXCHANGE, "axis.inbox.000.00.00.G22")
        queues = {q["name"] for q in mgmt.list_queues(declared.vhost)}
    assert [b["routing_key"] for b in inbound] == [""]
    assert [b["routing_key"] for b in inbox] == ["000.00.00.G22"]
    assert queues == {INBOUND_QUEUE, QUARANTINE_QUEUE, "axis.inbox.000.00.00.G22"}


def test_management_provisioning_matches_amqp_declarations(declared: BrokerEnv) -> None:
    # The broker refuses a redeclaration with other properties, so success here
    # proves both ways build the same topology.
    with declared.management() as mgmt:
        provision_hub(mgmt, declared.vhost)
        provision_inbox(mgmt, declared.vhost, "000.00.00.G22")
        provision_hub(mgmt, declared.vhost)
        bindings = mgmt.list_bindings(declared.vhost, SUBMIT_EXCHANGE, INBOUND_QUEUE)
    assert [b["routing_key"] for b in bindings] == [""]


def test_provision_hub_creates_the_vhost_and_remove_inbox_deletes_the_queue(
    broker: BrokerEnv,
) -> None:
    vhost = f"{broker.vhost}-provisioned"
    with broker.management() as mgmt:
        provision_hub(mgmt, vhost)
        assert mgmt.vhost_exists(vhost)
        provision_inbox(mgmt, vhost, "H41")
        assert mgmt.queue(vhost, "axis.inbox.H41")["type"] == "quorum"
        remove_inbox(mgmt, vhost, "H41")
        remove_inbox(mgmt, vhost, "H41")
        assert {q["name"] for q in mgmt.list_queues(vhost)} == {INBOUND_QUEUE, QUARANTINE_QUEUE}


# Isolation, with real agency credentials.


@dataclass(frozen=True)
class Agencies:
    env: BrokerEnv
    a: str
    b: str
    urls: dict[str, str]


@pytest.fixture(scope="module")
def agencies(broker: BrokerEnv) -> Iterator[Agencies]:
    """Agencies A and B provisioned through the API in a vhost of their own."""
    env = broker.derive("isolation")
    a, b = env.unique_code("A"), env.unique_code("B")
    urls = {}
    with env.management() as mgmt:
        provision_hub(mgmt, env.vhost)
        for code in (a, b):
            password = secrets.token_urlsafe()
            provision_agency_user(mgmt, env.vhost, code, password, tags=[env.user_tag])
            provision_inbox(mgmt, env.vhost, code)
            urls[code] = env.amqp_url_for(code, password)
    yield Agencies(env, a, b, urls)


@pytest.fixture
def channel_a(agencies: Agencies) -> Iterator[BlockingChannel]:
    """A channel logged in as agency A, with publisher confirms on."""
    with connect(agencies.urls[agencies.a]) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        yield channel


def drain(env: BrokerEnv, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
    """Take every message out of ``queue`` as the admin."""
    messages = []
    with connect(env.amqp_url) as conn:
        channel = conn.channel()
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return messages
            messages.append((props, body))


def test_agency_publishes_to_submit_as_itself_and_it_reaches_inbound(
    agencies: Agencies, channel_a: BlockingChannel
) -> None:
    drain(agencies.env, INBOUND_QUEUE)
    body = b"<edXML/>"
    channel_a.basic_publish(
        SUBMIT_EXCHANGE, "", body, properties(agencies.a), mandatory=True
    )  # confirmed, or this raises
    ((props, received),) = drain(agencies.env, INBOUND_QUEUE)
    assert received == body
    assert props.user_id == agencies.a


def test_agency_cannot_publish_as_another_agency(
    agencies: Agencies, channel_a: BlockingChannel
) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        channel_a.basic_publish(SUBMIT_EXCHANGE, "", b"<edXML/>", properties(agencies.b))
    assert refused_with(PRECONDITION_FAILED, caught)
    assert drain(agencies.env, INBOUND_QUEUE) == []


def test_agency_cannot_publish_to_deliver(agencies: Agencies, channel_a: BlockingChannel) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        channel_a.basic_publish(DELIVER_EXCHANGE, agencies.b, b"<x/>", properties(agencies.a))
    assert refused_with(ACCESS_REFUSED, caught)


@pytest.mark.parametrize("target", ["own", "other", "inbound", "quarantine"])
def test_agency_cannot_publish_into_a_queue_through_the_default_exchange(
    agencies: Agencies, channel_a: BlockingChannel, target: str
) -> None:
    queue = {
        "own": inbox_queue(agencies.a),
        "other": inbox_queue(agencies.b),
        "inbound": INBOUND_QUEUE,
        "quarantine": QUARANTINE_QUEUE,
    }[target]
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        channel_a.basic_publish("", queue, b"<x/>", properties(agencies.a))
    assert refused_with(ACCESS_REFUSED, caught)
    assert drain(agencies.env, queue) == []


def test_agency_consumes_its_own_inbox(agencies: Agencies, channel_a: BlockingChannel) -> None:
    with connect(agencies.env.amqp_url) as conn:
        hub = conn.channel()
        hub.confirm_delivery()
        hub.basic_publish(DELIVER_EXCHANGE, agencies.a, b"<for-a/>", mandatory=True)
    method, _, body = channel_a.basic_get(inbox_queue(agencies.a), auto_ack=True)
    assert method is not None
    assert body == b"<for-a/>"
    channel_a.basic_consume(inbox_queue(agencies.a), lambda *args: None)


@pytest.mark.parametrize("queue", ["other inbox", INBOUND_QUEUE, QUARANTINE_QUEUE])
def test_agency_cannot_consume_any_other_queue(
    agencies: Agencies, channel_a: BlockingChannel, queue: str
) -> None:
    if queue == "other inbox":
        queue = inbox_queue(agencies.b)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        channel_a.basic_consume(queue, lambda *args: None)
    assert refused_with(ACCESS_REFUSED, caught)


@pytest.mark.parametrize(
    "declare",
    [
        lambda ch: ch.queue_declare("mine", durable=True),
        lambda ch: ch.queue_declare("", exclusive=True),
        lambda ch: ch.exchange_declare("mine", exchange_type="fanout"),
        lambda ch: ch.queue_bind(INBOUND_QUEUE, DELIVER_EXCHANGE, routing_key="x"),
    ],
    ids=["queue", "server-named queue", "exchange", "binding"],
)
def test_agency_cannot_declare_anything(
    channel_a: BlockingChannel, declare: Callable[[BlockingChannel], object]
) -> None:
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
        declare(channel_a)
    assert refused_with(ACCESS_REFUSED, caught)


def test_a_dotted_code_cannot_read_the_inbox_of_a_code_differing_in_a_dot(
    agencies: Agencies,
) -> None:
    env = agencies.env
    dotted, lookalike = env.unique_code("D.1"), env.unique_code("DX1")
    password = secrets.token_urlsafe()
    with env.management() as mgmt:
        provision_agency_user(mgmt, env.vhost, dotted, password, tags=[env.user_tag])
        provision_inbox(mgmt, env.vhost, dotted)
        provision_inbox(mgmt, env.vhost, lookalike)
    with connect(env.amqp_url_for(dotted, password)) as conn:
        channel = conn.channel()
        channel.basic_consume(inbox_queue(dotted), lambda *args: None)
        other = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            other.basic_consume(inbox_queue(lookalike), lambda *args: None)
    assert refused_with(ACCESS_REFUSED, caught)


def test_removed_agency_user_can_no_longer_log_in(agencies: Agencies) -> None:
    env = agencies.env
    code, password = env.unique_code("GONE"), secrets.token_urlsafe()
    with env.management() as mgmt:
        provision_agency_user(mgmt, env.vhost, code, password, tags=[env.user_tag])
        connect(env.amqp_url_for(code, password)).close()
        remove_agency_user(mgmt, env.vhost, code)
        assert code not in {u["name"] for u in mgmt.list_users()}
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        connect(env.amqp_url_for(code, password))


def test_remove_agency_user_keeps_a_user_that_another_vhost_still_uses(
    agencies: Agencies,
) -> None:
    env = agencies.env
    other = env.derive("other-hub")
    code, password = env.unique_code("TWO"), secrets.token_urlsafe()
    with env.management() as mgmt:
        provision_agency_user(mgmt, env.vhost, code, password, tags=[env.user_tag])
        provision_agency_user(mgmt, other.vhost, code, password, tags=[env.user_tag])
        remove_agency_user(mgmt, env.vhost, code)
        assert [p["vhost"] for p in mgmt.user_permissions(code)] == [other.vhost]


# The hub's own user: its narrow permissions are enough for its work.


def test_hub_user_declares_consumes_and_publishes_with_its_permissions(broker: BrokerEnv) -> None:
    env = broker.derive("hub")
    hub = f"axis-hub-{env.user_tag}"
    password = secrets.token_urlsafe()
    with env.management() as mgmt:
        provision_hub_user(mgmt, env.vhost, password, name=hub, tags=[env.user_tag])
    code = env.unique_code("A")
    with connect(env.amqp_url_for(hub, password)) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        declare_hub_topology(channel)
        declare_inbox(channel, code)
        with connect(env.amqp_url) as admin:
            admin.channel().basic_publish(SUBMIT_EXCHANGE, "", b"<in/>")
        channel.basic_publish(DELIVER_EXCHANGE, code, b"<out/>", mandatory=True)
        channel.basic_publish("", QUARANTINE_QUEUE, b"<q/>", mandatory=True)
        method, _, body = channel.basic_get(INBOUND_QUEUE, auto_ack=True)
        assert (method is not None, body) == (True, b"<in/>")
        # Keep each channel referenced: pika's BlockingConnection.close() trips over
        # channels that were garbage-collected while it still tracks them.
        refused = [conn.channel() for _ in range(3)]
        for queue, ch in zip((inbox_queue(code), QUARANTINE_QUEUE), refused, strict=False):
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
                ch.basic_get(queue)
            assert refused_with(ACCESS_REFUSED, caught)
        refused[2].confirm_delivery()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as caught:
            refused[2].basic_publish(SUBMIT_EXCHANGE, "", b"<in/>")
        assert refused_with(ACCESS_REFUSED, caught)
    assert [body for _, body in drain(env, inbox_queue(code))] == [b"<out/>"]
    assert [body for _, body in drain(env, QUARANTINE_QUEUE)] == [b"<q/>"]
