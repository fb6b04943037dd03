"""``axis agency``, ``axis status`` and ``axis db`` through the CLI, on a hub made by init_hub."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pika
import pika.exceptions
import pytest
from click.testing import CliRunner, Result

from axis.admin import Admin
from axis.broker.testing import BrokerEnv
from axis.hubdir import init_hub
from cli import main
from signing.pki import issue

_serial = itertools.count(1)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, broker: BrokerEnv) -> tuple[Path, BrokerEnv]:
    """A hub folder with its own vhost; returns (axis.toml, the vhost's BrokerEnv)."""
    env = broker.derive("cli-agency")
    config = init_hub(
        tmp_path_factory.mktemp("cli") / "hub",
        vhost=env.vhost,
        management_url=broker.management_url,
        management_user=broker.admin_user,
        management_password=broker.admin_password,
        hub_name=f"hub-cli-{broker.user_tag}",
        user_tags=[broker.user_tag],
    )
    return config, env


@pytest.fixture(autouse=True)
def tag_agency_users(monkeypatch: pytest.MonkeyPatch, broker: BrokerEnv) -> None:
    """Agency users made through the CLI carry the session tag, so teardown deletes them."""
    original = Admin.from_config.__func__  # type: ignore[attr-defined]

    def from_config(cls: type[Admin], config: object, *, user_tags: object = ()) -> Admin:
        return original(cls, config, user_tags=[broker.user_tag])

    monkeypatch.setattr(Admin, "from_config", classmethod(from_config))


@pytest.fixture
def axis(hub: tuple[Path, BrokerEnv]) -> Callable[..., Result]:
    config, _ = hub

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["--config", str(config), *args])

    return run


@pytest.fixture
def agency(hub: tuple[Path, BrokerEnv], broker: BrokerEnv, tmp_path: Path) -> tuple[str, Path]:
    """A fresh code and a certificate for it, issued by the hub's dev CA."""
    code = broker.unique_code(f"C{next(_serial)}")
    issued = issue(code, ca_dir=hub[0].parent / "pki", out_dir=tmp_path)
    return code, issued.cert_path


def add_json(axis: Callable[..., Result], code: str, cert: Path) -> dict[str, str]:
    result = axis("agency", "add", code, "--name", "Sở Test", "--cert", str(cert), "--json")
    assert result.exit_code == 0, result.output + result.stderr
    parsed: dict[str, str] = json.loads(result.stdout)
    return parsed


def can_log_in(env: BrokerEnv, user: str, password: str) -> bool:
    params = pika.URLParameters(env.amqp_url_for(user, password))
    params.socket_timeout = 30
    params.stack_timeout = 60
    try:
        pika.BlockingConnection(params).close()
    except pika.exceptions.ProbableAuthenticationError:
        return False
    return True


def test_add_json_prints_exactly_the_credentials_that_work(
    axis: Callable[..., Result], agency: tuple[str, Path], hub: tuple[Path, BrokerEnv]
) -> None:
    code, cert = agency

    creds = add_json(axis, code, cert)

    assert set(creds) == {"code", "amqp_user", "amqp_password"}
    assert creds["code"] == creds["amqp_user"] == code
    assert can_log_in(hub[1], code, creds["amqp_password"])
    again = add_json(axis, code, cert)
    assert again["amqp_password"] is None


def test_add_human_output_shows_the_password_once(
    axis: Callable[..., Result], agency: tuple[str, Path]
) -> None:
    code, cert = agency

    first = axis("agency", "add", code, "--name", "X", "--cert", str(cert), "--kind", "province")
    second = axis("agency", "add", code, "--name", "X", "--cert", str(cert), "--kind", "province")

    assert first.exit_code == 0 and "AMQP password:" in first.stdout
    assert second.exit_code == 0 and "already registered" in second.stdout
    assert "password:" not in second.stdout


def test_errors_exit_1_with_a_message_on_stderr(
    axis: Callable[..., Result], agency: tuple[str, Path], broker: BrokerEnv
) -> None:
    code, cert = agency
    add_json(axis, code, cert)
    other = broker.unique_code(f"C{next(_serial)}")

    taken = axis("agency", "add", other, "--name", "Y", "--cert", str(cert))
    unknown = axis("agency", "suspend", "NOT.REGISTERED")

    assert taken.exit_code == 1 and "already registered to agency" in taken.stderr
    assert unknown.exit_code == 1 and "not registered" in unknown.stderr
    assert taken.stdout == unknown.stdout == ""


def test_config_problems_exit_2(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[router]\nbatch_size = 0\n")

    missing = CliRunner().invoke(main, ["--config", str(tmp_path / "no.toml"), "agency", "list"])
    bad = CliRunner().invoke(main, ["--config", str(tmp_path / "bad.toml"), "status"])

    assert missing.exit_code == 2 and "axis init" in missing.stderr
    assert bad.exit_code == 2 and "router.batch_size" in bad.stderr


def test_list_and_show(axis: Callable[..., Result], agency: tuple[str, Path]) -> None:
    code, cert = agency
    add_json(axis, code, cert)

    listed = json.loads(axis("agency", "list", "--json").stdout)
    shown = json.loads(axis("agency", "show", code, "--json").stdout)
    human = axis("agency", "show", code)

    row = {r["code"]: r for r in listed}[code]
    assert row == {
        "code": code,
        "name": "Sở Test",
        "kind": "ministry",
        "state": "active",
        "certificates": 1,
        "inbox_depth": 0,
    }
    assert shown["certificates"][0]["state"] == "active"
    assert len(shown["certificates"][0]["fingerprint"]) == 64
    assert shown["certificates"][0]["fingerprint"] in human.stdout
    assert code in axis("agency", "list").stdout


def test_suspend_resume_revoke_reset_remove(
    axis: Callable[..., Result], agency: tuple[str, Path], hub: tuple[Path, BrokerEnv]
) -> None:
    code, cert = agency
    old = add_json(axis, code, cert)["amqp_password"]

    assert axis("agency", "suspend", code).exit_code == 0
    assert json.loads(axis("agency", "show", code, "--json").stdout)["state"] == "suspended"
    assert "resumed" in axis("agency", "resume", code).stdout

    fp = json.loads(axis("agency", "show", code, "--json").stdout)["certificates"][0]["fingerprint"]
    revoked = axis("agency", "revoke-cert", fp[:20])
    assert revoked.exit_code == 0 and fp in revoked.stdout
    shown = json.loads(axis("agency", "show", code, "--json").stdout)
    assert shown["certificates"][0]["state"] == "revoked"

    reset = json.loads(axis("agency", "reset-password", code, "--json").stdout)
    assert not can_log_in(hub[1], code, old)
    assert can_log_in(hub[1], code, reset["amqp_password"])

    removed = axis("agency", "remove", code, "--purge-inbox")
    assert removed.exit_code == 0 and "removed" in removed.stdout
    assert axis("agency", "show", code).exit_code == 1


def test_add_cert(
    axis: Callable[..., Result],
    agency: tuple[str, Path],
    hub: tuple[Path, BrokerEnv],
    tmp_path: Path,
) -> None:
    code, cert = agency
    add_json(axis, code, cert)
    second = issue(code, ca_dir=hub[0].parent / "pki", out_dir=tmp_path / "second")

    result = axis("agency", "add-cert", code, str(second.cert_path))

    assert result.exit_code == 0 and second.fingerprint in result.stdout
    assert json.loads(axis("agency", "show", code, "--json").stdout)["certificate_count"] == 2


def test_import_json_and_groups(
    axis: Callable[..., Result], hub: tuple[Path, BrokerEnv], broker: BrokerEnv, tmp_path: Path
) -> None:
    prefix = broker.unique_code(f"I{next(_serial)}")
    rows = [
        "code,name,name_en,kind",
        f"{prefix}.H01,Tỉnh Một,One,province",
        f"{prefix}.H02,Tỉnh Hai,Two,province",
        f"{prefix}.G01,Bộ Một,Ministry,ministry",
    ]
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    ca = hub[0].parent / "pki"

    result = axis(
        "agency", "import", str(tmp_path / "a.csv"), "--certs", str(tmp_path / "certs"),
        "--issue-missing", "--ca", str(ca), "--json",
    )  # fmt: skip

    assert result.exit_code == 0, result.stderr
    parsed = json.loads(result.stdout)
    assert [r["code"] for r in parsed] == [f"{prefix}.H01", f"{prefix}.H02", f"{prefix}.G01"]
    assert all(r["amqp_password"] and r["created"] for r in parsed)
    groups = {g["name"]: g for g in json.loads(axis("group", "list", "--json").stdout)}
    assert {f"{prefix}.H01", f"{prefix}.H02"} <= set(groups["provinces"]["members"])
    assert f"{prefix}.G01" in groups["ministries"]["members"]
    assert not (set(groups["provinces"]["members"]) & {f"{prefix}.G01"})
    human = axis("agency", "import", str(tmp_path / "a.csv"), "--certs", str(tmp_path / "certs"))
    assert human.exit_code == 0 and "3 agencies (0 new" in human.stdout


def test_import_issue_missing_needs_a_ca(axis: Callable[..., Result], tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("code,name,name_en,kind\n")

    result = axis(
        "agency", "import", str(tmp_path / "a.csv"), "--certs", str(tmp_path), "--issue-missing"
    )

    assert result.exit_code == 2 and "--ca" in result.stderr


def test_status_and_db_upgrade(axis: Callable[..., Result], agency: tuple[str, Path]) -> None:
    code, cert = agency
    add_json(axis, code, cert)

    status = json.loads(axis("status", "--json").stdout)
    human = axis("status")
    upgraded = axis("db", "upgrade")

    assert status["broker"]["reachable"] and status["database"]["reachable"]
    assert status["broker"]["inbound"] == 0 and status["broker"]["quarantine"] == 0
    assert status["broker"]["inbound_consumers"] == 0
    assert status["database"]["agencies"] >= 1
    assert status["database"]["audit_seq"] == 0 and status["database"]["chain_head"] is None
    assert human.exit_code == 0 and "axis.inbound" in human.stdout
    assert upgraded.exit_code == 0 and "revision" in upgraded.stdout


def test_status_reports_an_unreachable_broker(tmp_path: Path) -> None:
    config = init_hub(tmp_path / "hub", broker=False, management_url="http://127.0.0.1:9")

    result = CliRunner().invoke(main, ["--config", str(config), "status", "--json"])

    assert result.exit_code == 1
    parsed = json.loads(result.stdout)
    assert parsed["broker"]["reachable"] is False
    assert parsed["database"]["reachable"] is True
