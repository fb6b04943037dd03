"""The management API client against the real RabbitMQ."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from axis.broker.management import Management, ManagementError, ManagementUnavailable
from axis.broker.testing import BrokerEnv


@pytest.fixture
def mgmt(broker: BrokerEnv) -> Iterator[Management]:
    with broker.management() as client:
        yield client


def test_vhost_create_is_idempotent_and_delete_tolerates_a_missing_one(
    broker: BrokerEnv, mgmt: Management
) -> None:
    vhost = f"{broker.vhost}-scratch"
    mgmt.create_vhost(vhost)
    mgmt.create_vhost(vhost)
    assert mgmt.vhost_exists(vhost)
    assert vhost in mgmt.list_vhosts()

    mgmt.delete_vhost(vhost)
    mgmt.delete_vhost(vhost)
    assert not mgmt.vhost_exists(vhost)


def test_vhost_names_with_a_slash_are_quoted_as_one_path_segment(
    broker: BrokerEnv, mgmt: Management
) -> None:
    vhost = f"{broker.vhost}-a/b"
    mgmt.create_vhost(vhost)
    try:
        mgmt.declare_queue(vhost, "q/1", arguments={"x-queue-type": "quorum"})
        assert mgmt.queue(vhost, "q/1")["vhost"] == vhost
        assert [q["name"] for q in mgmt.list_queues(vhost)] == ["q/1"]
    finally:
        mgmt.delete_vhost(vhost)
    assert not mgmt.vhost_exists(vhost)


def test_user_is_created_with_tags_and_deleted_twice(broker: BrokerEnv, mgmt: Management) -> None:
    name = f"{broker.user_tag}-user"
    mgmt.put_user(name, secrets.token_urlsafe(), tags=[broker.user_tag, "monitoring"])
    (user,) = [u for u in mgmt.list_users() if u["name"] == name]
    assert sorted(user["tags"]) == sorted([broker.user_tag, "monitoring"])

    mgmt.delete_user(name)
    mgmt.delete_user(name)
    assert name not in [u["name"] for u in mgmt.list_users()]


def test_a_user_without_a_password_exists_but_cannot_log_in(
    broker: BrokerEnv, mgmt: Management
) -> None:
    name = f"{broker.user_tag}-nopass"
    mgmt.put_user(name, tags=[broker.user_tag])
    (user,) = [u for u in mgmt.list_users() if u["name"] == name]
    assert user["password_hash"] == ""


def test_permissions_are_set_and_cleared(broker: BrokerEnv, mgmt: Management) -> None:
    name = f"{broker.user_tag}-perm"
    mgmt.put_user(name, secrets.token_urlsafe(), tags=[broker.user_tag])
    mgmt.set_permissions(broker.vhost, name, "^$", "^x$", "^y$")
    assert mgmt.user_permissions(name) == [
        {"user": name, "vhost": broker.vhost, "configure": "^$", "write": "^x$", "read": "^y$"}
    ]
    mgmt.clear_permissions(broker.vhost, name)
    mgmt.clear_permissions(broker.vhost, name)
    assert mgmt.user_permissions(name) == []


def test_queue_reports_depth_keys_even_before_stats_exist(
    broker: BrokerEnv, mgmt: Management
) -> None:
    mgmt.declare_queue(broker.vhost, "depth", arguments={"x-queue-type": "quorum"})
    mgmt.declare_queue(broker.vhost, "depth", arguments={"x-queue-type": "quorum"})
    try:
        queue = mgmt.queue(broker.vhost, "depth")
        assert queue["type"] == "quorum"
        assert queue["durable"] is True
        for key in ("messages", "messages_ready", "messages_unacknowledged", "consumers"):
            assert queue[key] == 0
    finally:
        mgmt.delete_queue(broker.vhost, "depth")
        mgmt.delete_queue(broker.vhost, "depth")


def test_redeclaring_a_queue_with_other_arguments_is_a_400_with_the_brokers_reason(
    broker: BrokerEnv, mgmt: Management
) -> None:
    mgmt.declare_queue(broker.vhost, "clash", arguments={"x-queue-type": "quorum"})
    try:
        with pytest.raises(ManagementError) as caught:
            mgmt.declare_queue(broker.vhost, "clash", arguments={"x-queue-type": "classic"})
        assert caught.value.status == 400
        assert caught.value.method == "PUT"
        assert "inequivalent arg" in caught.value.detail
        assert "/queues/" in str(caught.value)
    finally:
        mgmt.delete_queue(broker.vhost, "clash")


def test_missing_objects_are_404(broker: BrokerEnv, mgmt: Management) -> None:
    with pytest.raises(ManagementError) as caught:
        mgmt.queue(broker.vhost, "no-such-queue")
    assert caught.value.status == 404
    assert not isinstance(caught.value, ManagementUnavailable)


def test_wrong_password_is_a_401_that_does_not_reveal_the_password(broker: BrokerEnv) -> None:
    password = "s3cret-" + secrets.token_hex(8)
    with Management(broker.management_url, broker.admin_user, password) as client:
        with pytest.raises(ManagementError) as caught:
            client.overview()
        assert password not in repr(client)
    assert caught.value.status == 401
    assert password not in str(caught.value)


def test_connection_refused_is_unavailable_with_a_hint() -> None:
    client = Management("http://127.0.0.1:1", "guest", "guest", timeout=2)
    with client, pytest.raises(ManagementUnavailable) as caught:
        client.overview()
    assert caught.value.status is None
    assert "rabbitmq_management" in str(caught.value)
