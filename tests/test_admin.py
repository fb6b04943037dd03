"""axis/admin.py on the real RabbitMQ and both databases: registry and broker move together."""

from __future__ import annotations

import csv
import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest
from cryptography import x509

from axis import registry
from axis.admin import AGENCY_TAG, Admin, AdminError
from axis.broker.management import Management, ManagementError
from axis.broker.testing import BrokerEnv
from axis.broker.topology import DELIVER_EXCHANGE, inbox_queue, provision_hub
from axis.db import make_engine, upgrade
from signing.pki import CertifiedKey, init_ca, make_ca, make_leaf

REPO = Path(__file__).resolve().parent.parent
ACCESS_REFUSED = 403
_serial = itertools.count(1)


@pytest.fixture(scope="module")
def hub_env(broker: BrokerEnv) -> BrokerEnv:
    env = broker.derive("admin")
    with env.management() as mgmt:
        provision_hub(mgmt, env.vhost)
    return env


@pytest.fixture(scope="module")
def ca() -> CertifiedKey:
    return make_ca("Admin Test CA")


@pytest.fixture
def admin(db_url: str, hub_env: BrokerEnv, broker: BrokerEnv) -> Iterator[Admin]:
    upgrade(db_url)
    engine = make_engine(db_url)
    with hub_env.management() as mgmt:
        yield Admin(engine, mgmt, hub_env.vhost, user_tags=[broker.user_tag])
    engine.dispose()


@pytest.fixture
def new_code(broker: BrokerEnv) -> Callable[[], str]:
    """Codes unique to the session (agency users are broker-wide)."""
    return lambda: broker.unique_code(f"A{next(_serial)}")


def cert_for(code: str, ca: CertifiedKey) -> x509.Certificate:
    return make_leaf(code, ca).certificate


def connect(env: BrokerEnv, user: str, password: str) -> pika.BlockingConnection:
    params = pika.URLParameters(env.amqp_url_for(user, password))
    params.connection_attempts = 1
    # Generous: a broker busy starting another session's vhost can stall for seconds.
    params.socket_timeout = 30
    params.stack_timeout = 60
    return pika.BlockingConnection(params)


def can_log_in(env: BrokerEnv, user: str, password: str) -> bool:
    try:
        connect(env, user, password).close()
    except pika.exceptions.ProbableAuthenticationError:
        return False
    return True


def deliver(env: BrokerEnv, code: str, body: bytes) -> None:
    """Publish into an inbox the way the hub does, as the admin."""
    connection = pika.BlockingConnection(pika.URLParameters(env.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(DELIVER_EXCHANGE, code, body, mandatory=True)
    finally:
        connection.close()


def snapshot(admin: Admin) -> registry.Snapshot:
    with admin.engine.connect() as conn:
        return registry.load_snapshot(conn)


def test_registered_agency_consumes_its_inbox_and_no_other(
    admin: Admin, hub_env: BrokerEnv, ca: CertifiedKey, new_code: Callable[[], str]
) -> None:
    a, b = new_code(), new_code()
    reg = admin.register_agency(a, "Agency A", cert_for(a, ca), "province")
    admin.register_agency(b, "Agency B", cert_for(b, ca), "province")
    deliver(hub_env, a, b"<for-a/>")
    deliver(hub_env, b, b"<for-b/>")

    assert reg.created and reg.amqp_user == a and reg.amqp_password
    connection = connect(hub_env, a, reg.amqp_password)
    try:
        channel = connection.channel()
        _, _, body = channel.basic_get(inbox_queue(a), auto_ack=True)
        assert body == b"<for-a/>"
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.basic_get(inbox_queue(b), auto_ack=True)
        assert refused.value.reply_code == ACCESS_REFUSED
    finally:
        connection.close()
    user = admin.mgmt.get_user(a)
    assert user is not None and AGENCY_TAG in user["tags"]
    assert snapshot(admin).agencies[a].active


def test_registering_twice_changes_nothing(
    admin: Admin, hub_env: BrokerEnv, ca: CertifiedKey, new_code: Callable[[], str]
) -> None:
    code = new_code()
    cert = cert_for(code, ca)
    first = admin.register_agency(code, "Agency", cert, "ministry")
    version = snapshot(admin).version

    again = admin.register_agency(code, "Agency", cert, "ministry")

    assert (again.created, again.amqp_password) == (False, None)
    assert snapshot(admin).version == version
    assert first.amqp_password is not None
    assert can_log_in(hub_env, code, first.amqp_password)


def test_registering_again_repairs_missing_broker_objects(
    admin: Admin, hub_env: BrokerEnv, ca: CertifiedKey, new_code: Callable[[], str]
) -> None:
    code = new_code()
    cert = cert_for(code, ca)
    admin.register_agency(code, "Agency", cert)
    admin.mgmt.delete_user(code)
    admin.mgmt.delete_queue(hub_env.vhost, inbox_queue(code))

    repaired = admin.register_agency(code, "Agency", cert)

    assert not repaired.created
    assert repaired.amqp_password is not None  # a new user needs a password to be usable
    assert can_log_in(hub_env, code, repaired.amqp_password)
    assert admin.mgmt.queue(hub_env.vhost, inbox_queue(code))["durable"]


def assert_nothing_of(admin: Admin, hub_env: BrokerEnv, code: str) -> None:
    with admin.engine.connect() as conn:
        assert registry.get_agency(conn, code) is None
    assert admin.mgmt.get_user(code) is None
    with pytest.raises(ManagementError) as missing:
        admin.mgmt.queue(hub_env.vhost, inbox_queue(code))
    assert missing.value.status == 404


def test_certificate_of_another_agency_is_refused_and_nothing_is_left(
    admin: Admin, hub_env: BrokerEnv, ca: CertifiedKey, new_code: Callable[[], str]
) -> None:
    a, b = new_code(), new_code()
    cert = cert_for(a, ca)
    admin.register_agency(a, "Agency A", cert)

    with pytest.raises(registry.RegistryError, match="already registered to agency"):
        admin.register_agency(b, "Agency B", cert)

    assert_nothing_of(admin, hub_env, b)


@pytest.mark.parametrize("failing", ["put_user", "declare_queue", "bind_queue"])
def test_broker_failure_halfway_leaves_no_row_and_no_user(
    admin: Admin,
    hub_env: BrokerEnv,
    ca: CertifiedKey,
    new_code: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
) -> None:
    code = new_code()

    def broken(self: Management, *args: object, **kwargs: object) -> None:
        raise ManagementError(500, "PUT", "/simulated", "broker failed halfway")

    monkeypatch.setattr(Management, failing, broken)

    with pytest.raises(ManagementError, match="halfway"):
        admin.register_agency(code, "Agency", cert_for(code, ca))

    monkeypatch.undo()
    assert_nothing_of(admin, hub_env, code)


def test_failed_commit_undoes_the_broker_side(
    admin: Admin,
    hub_env: BrokerEnv,
    ca: CertifiedKey,
    new_code: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code = new_code()
    original = Admin._provision

    def provision_then_fail(self: Admin, *args: object, **kwargs: object) -> str | None:
        # Everything on the broker succeeds; something after it (here: before the
        # commit completes) fails, as a lost database connection would.
        password = original(self, *args, **kwargs)  # type: ignore[arg-type]
        raise RuntimeError("database went away")
        return password  # pragma: no cover

    monkeypatch.setattr(Admin, "_provision", provision_then_fail)

    with pytest.raises(RuntimeError):
        admin.register_agency(code, "Agency", cert_for(code, ca))

    assert_nothing_of(admin, hub_env, code)


def prefixed_agencies_csv(path: Path, prefix: str) -> list[dict[str, str]]:
    """The 95 agencies of axis/data/agencies.csv with codes unique to this test session."""
    with (REPO / "axis/data/agencies.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row["code"] = f"{prefix}.{row['code']}"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def test_import_of_95_agencies_issues_certificates_and_builds_groups(
    admin: Admin, hub_env: BrokerEnv, tmp_path: Path, new_code: Callable[[], str], db_url: str
) -> None:
    rows = prefixed_agencies_csv(tmp_path / "agencies.csv", new_code())
    init_ca(tmp_path / "ca")
    ticks: list[int] = []

    started = time.monotonic()
    result = admin.import_agencies(
        tmp_path / "agencies.csv",
        tmp_path / "certs",
        issue_missing_from_ca=tmp_path / "ca",
        progress=ticks.append,
    )
    seconds = time.monotonic() - started
    print(f"\nimport of {len(rows)} agencies on {db_url.split(':')[0]}: {seconds:.2f} s")

    assert len(rows) == 95
    assert len(result.registrations) == 95 and all(r.created for r in result.registrations)
    assert len(result.issued) == 95 and sum(ticks) == 95
    assert seconds < 30
    codes = {row["code"] for row in rows}
    provinces = {row["code"] for row in rows if row["kind"] == "province"}
    groups = snapshot(admin).groups
    assert provinces <= set(groups["provinces"]) and len(provinces) == 63
    assert codes <= set(groups["all"])
    if db_url.startswith("sqlite"):
        assert result.groups == {"provinces": 63, "ministries": 31, "all": 95}
    queues = {q["name"] for q in admin.mgmt.list_queues(hub_env.vhost)}
    assert {inbox_queue(c) for c in codes} <= queues
    some = result.registrations[40]
    assert some.amqp_password and can_log_in(hub_env, some.code, some.amqp_password)

    again = admin.import_agencies(tmp_path / "agencies.csv", tmp_path / "certs")
    assert not any(r.created or r.amqp_password for r in again.registrations)
    assert again.issued == ()

    # 95 quorum queues weigh on a broker other test sessions share: remove them.
    for code in codes:
        admin.remove(code, purge_inbox=True)
    assert not {inbox_queue(c) for c in codes} & {
        q["name"] for q in admin.mgmt.list_queues(hub_env.vhost)
    }


def test_import_without_a_certificate_changes_nothing(
    admin: Admin, tmp_path: Path, new_code: Callable[[], str]
) -> None:
    rows = prefixed_agencies_csv(tmp_path / "agencies.csv", new_code())

    with pytest.raises(AdminError, match="--issue-missing"):
        admin.import_agencies(tmp_path / "agencies.csv", tmp_path / "empty")

    assert not set(snapshot(admin).agencies) & {row["code"] for row in rows}


def wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_suspend_closes_connections_and_resume_reactivates(
    admin: Admin, hub_env: BrokerEnv, ca: CertifiedKey, new_code: Callable[[], str]
) -> None:
    code = new_code()
    reg = admin.register_agency(code, "Agency", cert_for(code, ca))
    assert reg.amqp_password
    connection = connect(hub_env, code, reg.amqp_password)
    wait_for(lambda: bool(admin.mgmt.list_connections(user=code, vhost=hub_env.vhost)))

    assert admin.suspend(code) == 1

    with pytest.raises(pika.exceptions.ConnectionClosedByBroker, match="suspended"):
        for _ in range(50):
            connection.process_data_events(time_limit=0.2)
    assert not snapshot(admin).agencies[code].active

    assert admin.resume(code)
    assert snapshot(admin).agencies[code].active
    assert not admin.resume(code)


def test_add_and_revoke_certificate(
    admin: Admin, ca: CertifiedKey, new_code: Callable[[], str]
) -> None:
    code = new_code()
    admin.register_agency(code, "Agency", cert_for(code, ca))
    fp = admin.add_cert(code, cert_for(code, ca))

    assert admin.revoke_cert(fp[:16]) == (code, fp)

    certs = {c.fingerprint: c for c in snapshot(admin).certificates.values()}
    assert certs[fp].revoked
    assert [c.state for c in admin.show_agency(code).certificates] == ["active", "revoked"]
    with pytest.raises(registry.RegistryError):
        admin.revoke_cert("ffffffffffffffff")


def test_reset_password_stops_the_old_one(
    admin: Admin, hub_env: BrokerEnv, ca: CertifiedKey, new_code: Callable[[], str]
) -> None:
    code = new_code()
    old = admin.register_agency(code, "Agency", cert_for(code, ca)).amqp_password
    assert old

    new = admin.reset_password(code).amqp_password

    assert new and new != old
    assert not can_log_in(hub_env, code, old)
    assert can_log_in(hub_env, code, new)
    user = admin.mgmt.get_user(code)
    assert user is not None and AGENCY_TAG in user["tags"]


@pytest.mark.parametrize("purge", [False, True])
def test_remove_deletes_rows_and_user_and_inbox_only_when_purged(
    admin: Admin, hub_env: BrokerEnv, ca: CertifiedKey, new_code: Callable[[], str], purge: bool
) -> None:
    code = new_code()
    password = admin.register_agency(code, "Agency", cert_for(code, ca)).amqp_password
    admin.add_group("removal-test", [code])

    assert admin.remove(code, purge_inbox=purge)

    snap = snapshot(admin)
    assert code not in snap.agencies
    assert code not in snap.groups["removal-test"]
    assert not any(c.agency_code == code for c in snap.certificates.values())
    assert admin.mgmt.get_user(code) is None
    assert password and not can_log_in(hub_env, code, password)
    assert (
        inbox_queue(code) in {q["name"] for q in admin.mgmt.list_queues(hub_env.vhost)}
    ) != purge
    assert not admin.remove(code, purge_inbox=True)


def test_groups_add_remove_list(
    admin: Admin, ca: CertifiedKey, new_code: Callable[[], str]
) -> None:
    a, b = new_code(), new_code()
    for code in (a, b):
        admin.register_agency(code, "Agency", cert_for(code, ca))
    name = f"g-{a.split('.')[-1].lower()}"

    assert admin.add_group(f"@{name}", [a, b], "test group") == 2
    assert admin.add_group(name, [a]) == 2
    listed = {g.name: g for g in admin.list_groups()}
    assert listed[name].members == tuple(sorted((a, b)))
    assert listed[name].description == "test group"

    assert admin.remove_group(name, [a])
    assert {g.name: g for g in admin.list_groups()}[name].members == (b,)
    assert admin.remove_group(name)
    assert name not in {g.name for g in admin.list_groups()}
    with pytest.raises(registry.RegistryError):
        admin.add_group(name, ["NOT.REGISTERED"])


def test_list_and_show_report_inbox_depth(
    admin: Admin, hub_env: BrokerEnv, ca: CertifiedKey, new_code: Callable[[], str]
) -> None:
    code = new_code()
    admin.register_agency(code, "Agency", cert_for(code, ca), "party", name_en="An agency")
    deliver(hub_env, code, b"<x/>")

    wait_for(lambda: admin.show_agency(code).inbox_depth == 1)
    info = {i.code: i for i in admin.list_agencies()}[code]
    assert (info.kind, info.state, info.certificate_count, info.inbox_depth) == (
        "party",
        "active",
        1,
        1,
    )
