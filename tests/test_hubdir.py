"""axis/hubdir.py: ``init_hub`` makes a hub folder that loads, signs and has its broker."""

from __future__ import annotations

import stat
from pathlib import Path

import pika
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from axis.broker.testing import BrokerEnv
from axis.broker.topology import (
    DELIVER_EXCHANGE,
    INBOUND_QUEUE,
    QUARANTINE_QUEUE,
    SUBMIT_EXCHANGE,
    hub_permissions,
)
from axis.config import load
from axis.db import current_revision
from axis.hubdir import HubDirError, init_hub
from cli import main
from signing.pki import load_certificates, load_key


@pytest.fixture(scope="module")
def hub_env(broker: BrokerEnv) -> BrokerEnv:
    """A vhost of its own: init_hub provisions the whole topology in it."""
    return broker.derive("hubdir")


@pytest.fixture(scope="module")
def hub_dir(
    tmp_path_factory: pytest.TempPathFactory, broker: BrokerEnv, hub_env: BrokerEnv
) -> Path:
    directory = tmp_path_factory.mktemp("hub") / "hub"
    init_hub(
        directory,
        vhost=hub_env.vhost,
        management_url=broker.management_url,
        management_user=broker.admin_user,
        management_password=broker.admin_password,
        hub_name=f"hub-{broker.user_tag}",
        user_tags=[broker.user_tag],
    )
    return directory


def hub_name(broker: BrokerEnv) -> str:
    return f"hub-{broker.user_tag}"


def test_config_loads_with_every_path_inside_the_folder(hub_dir: Path, broker: BrokerEnv) -> None:
    config = load(hub_dir / "axis.toml", env={})

    assert config.hub.name == config.broker.user == hub_name(broker)
    assert config.database.url == f"sqlite:///{hub_dir / 'axis.db'}"
    assert config.hub.archive_dir == hub_dir / "archive"
    assert config.hub.archive_dir.is_dir()
    assert config.trust.anchors == (hub_dir / "pki/ca.pem",)
    assert config.trust.crls == (hub_dir / "pki/crl.pem",)
    assert config.signing.key == hub_dir / "hub/hub.key"
    assert current_revision(config.database.url) is not None


def test_secrets_are_in_0600_files_never_in_the_toml(hub_dir: Path, broker: BrokerEnv) -> None:
    config = load(hub_dir / "axis.toml", env={})
    text = (hub_dir / "axis.toml").read_text()

    for secret_file in (config.broker.password_file, config.management.password_file):
        assert secret_file is not None
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(config.broker.secret()) >= 32
    assert config.broker.secret() not in text
    assert config.management.secret() == broker.admin_password
    assert 'password = ""' in text


def test_hub_key_is_p256_and_certified_by_the_folder_ca(hub_dir: Path, broker: BrokerEnv) -> None:
    key = load_key(hub_dir / "hub/hub.key")
    cert = load_certificates(hub_dir / "hub/hub.pem")[0]
    ca = load_certificates(hub_dir / "pki/ca.pem")[0]

    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(ca)
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == hub_name(broker)
    assert stat.S_IMODE((hub_dir / "hub/hub.key").stat().st_mode) == 0o600


def test_axis_pki_issue_accepts_the_folder_ca(hub_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["pki", "issue", "000.00.00.G22", "--ca", str(hub_dir / "pki"), "--out", str(tmp_path)],
    )

    assert result.exit_code == 0, result.output
    cert = load_certificates(tmp_path / "000.00.00.G22.pem")[0]
    cert.verify_directly_issued_by(load_certificates(hub_dir / "pki/ca.pem")[0])


def test_broker_has_the_topology_and_the_hub_user(
    hub_dir: Path, hub_env: BrokerEnv, broker: BrokerEnv
) -> None:
    config = load(hub_dir / "axis.toml", env={})
    with hub_env.management() as mgmt:
        assert mgmt.exchange(hub_env.vhost, SUBMIT_EXCHANGE)["type"] == "fanout"
        assert mgmt.exchange(hub_env.vhost, DELIVER_EXCHANGE)["type"] == "direct"
        for queue in (INBOUND_QUEUE, QUARANTINE_QUEUE):
            assert mgmt.queue(hub_env.vhost, queue)["arguments"]["x-queue-type"] == "quorum"
        assert mgmt.list_bindings(hub_env.vhost, SUBMIT_EXCHANGE, INBOUND_QUEUE)
        permissions = mgmt.user_permissions(hub_name(broker))
    assert [(p["vhost"], p["configure"], p["write"], p["read"]) for p in permissions] == [
        (hub_env.vhost, *hub_permissions())
    ]

    # The hub logs in with the password the folder holds, and can consume axis.inbound.
    connection = pika.BlockingConnection(
        pika.URLParameters(hub_env.amqp_url_for(config.broker.user, config.broker.secret()))
    )
    try:
        connection.channel().queue_declare(INBOUND_QUEUE, passive=True)
    finally:
        connection.close()


def test_refuses_to_overwrite_without_force(hub_dir: Path) -> None:
    with pytest.raises(HubDirError, match="--force"):
        init_hub(hub_dir, broker=False)


def test_force_rewrites_the_config_but_keeps_pki_keys_and_secrets(tmp_path: Path) -> None:
    directory = tmp_path / "hub"
    init_hub(directory, broker=False, vhost="one")
    kept = {
        p: p.read_bytes()
        for p in (
            directory / "pki/ca.pem",
            directory / "pki/ca.key",
            directory / "hub/hub.key",
            directory / "hub/hub.pem",
            directory / "secrets/broker-password",
        )
    }

    init_hub(directory, broker=False, vhost="two", force=True)

    assert load(directory / "axis.toml", env={}).broker.vhost == "two"
    assert {p: p.read_bytes() for p in kept} == kept


def test_refuses_passwords_in_urls(tmp_path: Path) -> None:
    with pytest.raises(HubDirError, match="AMQP URL"):
        init_hub(tmp_path / "a", broker=False, amqp_url="amqp://u:secret@127.0.0.1/")
    with pytest.raises(HubDirError, match="pgpass"):
        init_hub(tmp_path / "b", broker=False, database_url="postgresql://u:secret@db/axis")
    assert not (tmp_path / "a" / "axis.toml").exists()


def test_refuses_to_take_over_a_hub_user_serving_another_vhost(
    tmp_path: Path, hub_dir: Path, broker: BrokerEnv, hub_env: BrokerEnv
) -> None:
    other = broker.derive("hubdir-other")

    with pytest.raises(HubDirError, match="already serves"):
        init_hub(
            tmp_path / "second",
            vhost=other.vhost,
            management_user=broker.admin_user,
            management_password=broker.admin_password,
            hub_name=hub_name(broker),
        )

    # The first hub still logs in with its own password.
    config = load(hub_dir / "axis.toml", env={})
    url = hub_env.amqp_url_for(config.broker.user, config.broker.secret())
    pika.BlockingConnection(pika.URLParameters(url)).close()
