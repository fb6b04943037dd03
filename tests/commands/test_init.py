"""``axis init`` through the CLI."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from click.testing import CliRunner

from axis.broker.testing import BrokerEnv
from axis.broker.topology import INBOUND_QUEUE
from axis.commands import init as init_command
from axis.config import load
from axis.hubdir import init_hub
from cli import main


def test_init_creates_a_hub_and_prints_next_steps(
    tmp_path: Path, broker: BrokerEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = broker.derive("cli-init")
    # The hub's RabbitMQ user must carry the session tag so teardown deletes it.
    monkeypatch.setattr(
        init_command, "init_hub", functools.partial(init_hub, user_tags=[broker.user_tag])
    )
    (tmp_path / "mgmt-password").write_text(broker.admin_password + "\n")
    args = [
        "init", str(tmp_path / "hub"), "--vhost", env.vhost,
        "--management-url", broker.management_url, "--management-user", broker.admin_user,
        "--management-password-file", str(tmp_path / "mgmt-password"),
        "--hub-name", f"hub-init-{broker.user_tag}",
    ]  # fmt: skip

    result = CliRunner().invoke(main, args)

    assert result.exit_code == 0, result.output
    assert "hub/hub.key" in result.stdout and "Next steps" in result.stdout
    assert f"export AXIS_CONFIG={tmp_path / 'hub' / 'axis.toml'}" in result.stdout
    config = load(tmp_path / "hub" / "axis.toml", env={})
    assert config.broker.vhost == env.vhost
    assert config.management.secret() == broker.admin_password
    with env.management() as mgmt:
        assert mgmt.queue(env.vhost, INBOUND_QUEUE)["durable"]

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 1 and "--force" in again.stderr
    forced = CliRunner().invoke(main, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    assert "kept" in forced.stdout


def test_init_without_broker(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", str(tmp_path / "hub"), "--no-broker"])

    assert result.exit_code == 0, result.output
    assert "provisioned" not in result.stdout
    status = CliRunner().invoke(
        main, ["--config", str(tmp_path / "hub" / "axis.toml"), "db", "upgrade"]
    )
    assert status.exit_code == 0 and "database at revision" in status.stdout
