"""AMQP over TLS: the hub and the SDK verify the broker against the dev CA.

The shared RabbitMQ is not restarted for this: the ``tls_broker`` fixture starts two
TLS listeners on the running node with ``rabbitmqctl eval`` (free ports on
127.0.0.1, a broker certificate issued by the dev PKI for ``localhost`` and
``127.0.0.1``), one that accepts clients without a certificate and one that requires
a client certificate from the same CA, and stops both at the end. It needs a broker
on this machine, ``rabbitmqctl``, and root (to hand the key to the rabbitmq user);
without them the broker tests skip, saying why. docs/guarantees.md shows the
permanent listener for ``rabbitmq.conf``.

Proven here: ``axis serve`` and ``AgencyClient`` carry a document end to end over
TLS, and the broker reports every one of their connections as TLS; a client or
hub that does not trust the broker's CA is refused before any password is sent; a
client certificate is presented when configured and required by the strict
listener.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pika
import pika.exceptions
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

import schemas
from adapters import AgencyClient, BrokerUntrusted
from axis.amqp import parameters, tls_context
from axis.commands.pki import group as pki_command
from axis.config import ConfigError, from_mapping
from signing.pki import cert_pem, init_ca, issue_tls, load_certificates, make_ca

SERVE = [sys.executable, "-m", "cli"]
REPO = str(Path(__file__).parents[2])


# Configuration and the TLS context, no broker needed.


def broker_section(tmp_path: Path, **broker: str):
    return from_mapping({"broker": broker}, base_dir=tmp_path, env={}).broker


def test_an_amqps_url_gets_a_context_that_verifies_the_broker_and_its_name(
    tmp_path: Path,
) -> None:
    ca = init_ca(tmp_path / "ca")
    broker = broker_section(
        tmp_path, url="amqps://broker.example/", password="x", tls_ca_file=str(ca.cert_path)
    )

    params = parameters(broker)
    context = params.ssl_options.context

    assert params.port == 5671
    assert params.ssl_options.server_hostname == "broker.example"
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [
        (
            (("countryName", "VN"),),
            (("organizationName", "Axis"),),
            (("commonName", "Axis Dev CA"),),
        )
    ]


def test_a_plain_amqp_url_gets_no_tls(tmp_path: Path) -> None:
    params = parameters(broker_section(tmp_path, url="amqp://127.0.0.1/", password="x"))
    assert params.ssl_options is None
    assert params.port == 5672


@pytest.mark.parametrize(
    ("broker", "key"),
    [
        ({"url": "amqp://127.0.0.1/", "tls_ca_file": "ca.pem"}, "broker.tls_ca_file"),
        ({"url": "amqps://127.0.0.1/", "tls_key_file": "client.key"}, "broker.tls_key_file"),
        ({"url": "https://127.0.0.1/"}, "broker.url"),
        ({"url": "amqps://127.0.0.1:notaport/"}, "broker.url"),
    ],
    ids=["tls file with amqp", "key without certificate", "not amqp", "bad port"],
)
def test_inconsistent_tls_settings_stop_start_up_naming_the_key(
    tmp_path: Path, broker: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        broker_section(tmp_path, **broker)
    assert caught.value.key == key


def test_a_missing_ca_file_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    broker = broker_section(tmp_path, url="amqps://h/", tls_ca_file="nowhere/ca.pem")
    with pytest.raises(ConfigError) as caught:
        tls_context(broker)
    assert caught.value.key == "broker.tls_ca_file"


def test_axis_pki_issue_tls_makes_server_and_client_certificates(tmp_path: Path) -> None:
    init_ca(tmp_path / "ca")
    runner = CliRunner()
    server = runner.invoke(
        pki_command,
        [
            "issue-tls",
            "broker",
            "--ca",
            str(tmp_path / "ca"),
            "--out",
            str(tmp_path / "tls"),
            "--host",
            "localhost",
            "--host",
            "127.0.0.1",
            "--host",
            "::1",
        ],
    )
    client = runner.invoke(
        pki_command,
        [
            "issue-tls",
            "axis-hub",
            "--client",
            "--ca",
            str(tmp_path / "ca"),
            "--out",
            str(tmp_path / "tls"),
        ],
    )
    no_host = runner.invoke(
        pki_command, ["issue-tls", "x", "--ca", str(tmp_path / "ca"), "--out", str(tmp_path)]
    )

    assert server.exit_code == client.exit_code == 0, server.output + client.output
    assert no_host.exit_code == 1 and "at least one host" in no_host.output
    cert = load_certificates(tmp_path / "tls" / "broker.pem")[0]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    client_cert = load_certificates(tmp_path / "tls" / "axis-hub.pem")[0]
    client_usage = client_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(client_usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert oct((tmp_path / "tls" / "axis-hub.key").stat().st_mode & 0o777) == "0o600"


# A real TLS listener on the shared broker.


@dataclass(frozen=True)
class TlsBroker:
    """Two TLS listeners on the running broker, and the files of the dev PKI behind them."""

    port: int
    """Verifies a client certificate if one is presented; does not require one."""
    strict_port: int
    """Requires a client certificate issued by the dev CA."""
    ca_file: Path
    folder: Path
    """The dev CA (``ca/``) and the client certificates (``clients/``)."""

    def client_certificate(self, name: str) -> tuple[Path, Path]:
        """A TLS client certificate from the dev CA: (certificate, key)."""
        issued = issue_tls(
            name, ca_dir=self.folder / "ca", out_dir=self.folder / "clients", client=True
        )
        return issued.cert_path, issued.key_path


def _rabbitmqctl_eval(expression: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rabbitmqctl", "eval", expression], capture_output=True, text=True, timeout=60
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _start_listener(port: int, broker_dir: Path, *, require_client_certificate: bool) -> None:
    options = (
        f'[{{cacertfile, "{broker_dir}/ca.pem"}}, {{certfile, "{broker_dir}/broker.pem"}}, '
        f'{{keyfile, "{broker_dir}/broker.key"}}, {{verify, verify_peer}}, '
        f"{{fail_if_no_peer_cert, {str(require_client_certificate).lower()}}}]"
    )
    done = _rabbitmqctl_eval(
        f'rabbit_networking:start_ssl_listener({{"127.0.0.1", {port}}}, {options}, 1).'
    )
    if done.returncode != 0 or done.stdout.strip() != "ok":
        pytest.fail(f"could not start a TLS listener on port {port}: {done.stdout}{done.stderr}")
    deadline = time.monotonic() + 30
    while not _listening(port):
        assert time.monotonic() < deadline, f"the TLS listener on {port} does not answer"
        time.sleep(0.2)


def _stop_listener(port: int) -> None:
    _rabbitmqctl_eval(f'rabbit_networking:stop_tcp_listener({{"127.0.0.1", {port}}}).')


@pytest.fixture(scope="module")
def tls_broker(broker) -> Iterator[TlsBroker]:
    """Two TLS listeners on the shared broker for this module; see the module docstring."""
    host = urlsplit(broker.amqp_url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        pytest.skip(f"the broker is on {host}: a TLS listener can only be added to a local one")
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not installed: cannot add a TLS listener at run time")
    if os.geteuid() != 0:
        pytest.skip("needs root to give the rabbitmq user the listener's private key")
    probe = _rabbitmqctl_eval("ok.")
    if probe.returncode != 0:
        pytest.skip(f"rabbitmqctl cannot reach the local node: {probe.stderr.strip()}")
    owner = pwd.getpwnam("rabbitmq")

    folder = Path(tempfile.mkdtemp(prefix="axis-tls-"))
    assert re.fullmatch(r"[\w/.-]+", str(folder)), folder  # goes into an Erlang string
    try:
        folder.chmod(0o711)  # the broker may pass through, to its own folder only
        ca = init_ca(folder / "ca", name="Axis TLS Test CA")
        broker_dir = folder / "broker"
        issue_tls(
            "broker", ca_dir=folder / "ca", out_dir=broker_dir, hosts=["localhost", "127.0.0.1"]
        )
        shutil.copy(ca.cert_path, broker_dir / "ca.pem")
        for path in (broker_dir, *broker_dir.iterdir()):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        broker_dir.chmod(0o700)
        ports = [_free_port(), _free_port()]
        started: list[int] = []
        try:
            for port, strict in zip(ports, (False, True), strict=True):
                _start_listener(port, broker_dir, require_client_certificate=strict)
                started.append(port)
            yield TlsBroker(ports[0], ports[1], ca.cert_path, folder)
        finally:
            for port in started:
                _stop_listener(port)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def connections(hub, users: set[str], count: int) -> list[dict]:
    """The broker's view of ``users``' connections on the hub's vhost, once ``count`` show."""
    deadline = time.monotonic() + 30
    with hub.broker.management() as mgmt:
        while True:
            found = [c for c in mgmt.list_connections(vhost=hub.broker.vhost) if c["user"] in users]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.5)


def sdk(hub, agency, url: str, **options) -> AgencyClient:
    return AgencyClient(
        agency.code,
        amqp_url=url,
        password=agency.password,
        key=agency.signer.key,
        certificate=agency.signer.certificate,
        trust_anchors=[hub.ca.certificate],
        hub_certificate=hub.config.signing.certificate,
        reconnect_timeout=30,
        **options,
    )


def serve_over_tls(hub, tls: TlsBroker, ca_file: Path, **popen) -> subprocess.Popen:
    """``axis serve`` on the hub's own axis.toml, sent to the TLS listener by AXIS_* variables."""
    env = {
        **os.environ,
        "PYTHONPATH": REPO,
        "AXIS_BROKER_URL": f"amqps://127.0.0.1:{tls.port}/",
        "AXIS_BROKER_TLS_CA_FILE": str(ca_file),
    }
    return subprocess.Popen([*SERVE, "--config", str(hub.config.source), "serve"], env=env, **popen)


def test_the_hub_and_the_sdk_carry_a_document_end_to_end_over_tls(idle_hub, tls_broker) -> None:
    hub, tls = idle_hub, tls_broker
    a, b = hub.register("TLSA"), hub.register("TLSB")
    url = f"amqps://localhost:{tls.port}/{hub.broker.vhost}"
    log = hub.config.source.with_name("serve-tls.log").open("wb")
    serve = serve_over_tls(hub, tls, tls.ca_file, stdout=log, stderr=subprocess.STDOUT)
    try:
        with hub.broker.management() as mgmt:
            deadline = time.monotonic() + 60
            while mgmt.queue(hub.broker.vhost, "axis.inbound")["consumers"] < 1:
                assert serve.poll() is None, "axis serve exited"
                assert time.monotonic() < deadline, "the router did not start over TLS"
                time.sleep(0.3)
        edoc = a.edoc([b.code])
        with (
            sdk(hub, a, url, tls_ca_file=tls.ca_file) as sender,
            sdk(hub, b, url, tls_ca_file=tls.ca_file) as recipient,
        ):
            receipt = sender.send(edoc).receipt
            [delivery] = list(recipient.receive(timeout=10))
            seen = connections(hub, {hub.config.broker.user, a.code, b.code}, 3)
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=60)
        log.close()

    assert code == 0
    assert receipt.document_id == edoc.document_id
    assert delivery.verified and delivery.sender == a.code
    assert delivery.receipt_id == receipt.receipt_id
    assert schemas.read_header(schemas.xml.parse(delivery.body)).document_id == edoc.document_id
    assert {c["user"] for c in seen} == {hub.config.broker.user, a.code, b.code}
    for connection in seen:
        assert connection["ssl"] is True, connection
        assert connection["port"] == tls.port
        assert connection["ssl_protocol"] in ("tlsv1.2", "tlsv1.3")


@pytest.mark.parametrize("trust", ["another CA", "the system store"])
def test_an_sdk_that_does_not_trust_the_broker_ca_is_refused_at_once(
    tls_broker, tmp_path: Path, trust: str
) -> None:
    from signing.pki import make_leaf

    ca = make_ca("Some Other CA")
    leaf = make_leaf("000.00.00.G22", ca)
    (tmp_path / "other-ca.pem").write_bytes(cert_pem(ca.certificate))
    client = AgencyClient(
        "000.00.00.G22",
        amqp_url=f"amqps://127.0.0.1:{tls_broker.port}/",
        password="never-sent",
        key=leaf.key,
        certificate=leaf.certificate,
        trust_anchors=[ca.certificate],
        tls_ca_file=tmp_path / "other-ca.pem" if trust == "another CA" else None,
        reconnect_timeout=60,
    )
    started = time.monotonic()

    with pytest.raises(BrokerUntrusted, match="CERTIFICATE_VERIFY_FAILED"):
        client.__enter__()

    assert time.monotonic() - started < 10, "a certificate error is not retried"


def test_a_hub_that_does_not_trust_the_broker_ca_does_not_start(
    idle_hub, tls_broker, tmp_path: Path
) -> None:
    (tmp_path / "other-ca.pem").write_bytes(cert_pem(make_ca("Some Other CA").certificate))

    serve = serve_over_tls(
        idle_hub,
        tls_broker,
        tmp_path / "other-ca.pem",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = serve.communicate(timeout=120)

    assert serve.returncode == 1, out + err
    assert "cannot connect to the broker" in err
    assert "CERTIFICATE_VERIFY_FAILED" in err
    assert idle_hub.config.broker.secret() not in out + err


def test_a_client_certificate_is_presented_and_the_strict_listener_requires_it(
    hub, tls_broker
) -> None:
    tls = tls_broker
    cert_file, key_file = tls.client_certificate("axis-hub-client")
    base = {
        "url": f"amqps://127.0.0.1:{tls.strict_port}/",
        "vhost": hub.broker.vhost,
        "user": hub.config.broker.user,
        "password": hub.config.broker.secret(),
        "tls_ca_file": str(tls.ca_file),
    }
    with_certificate = from_mapping(
        {"broker": base | {"tls_cert_file": str(cert_file), "tls_key_file": str(key_file)}},
        base_dir=Path("/"),
        env={},
    ).broker
    without = from_mapping({"broker": base}, base_dir=Path("/"), env={}).broker

    connection = pika.BlockingConnection(parameters(with_certificate, name="mtls-test"))
    try:
        seen = [
            c
            for c in connections(hub, {hub.config.broker.user}, 2)
            if c.get("client_properties", {}).get("connection_name") == "mtls-test"
        ]
    finally:
        connection.close()
    with pytest.raises((pika.exceptions.AMQPConnectionError, ssl.SSLError, ConnectionError)):
        pika.BlockingConnection(parameters(without, name="no-client-certificate")).close()

    [mtls] = seen
    assert mtls["ssl"] is True and mtls["peer_cert_subject"]
    assert "CN=axis-hub-client" in mtls["peer_cert_subject"]


def test_an_sdk_with_a_client_certificate_sends_through_the_strict_listener(
    hub, tls_broker
) -> None:
    tls = tls_broker
    a, b = hub.register("MTLSA"), hub.register("MTLSB")
    cert_file, key_file = tls.client_certificate(a.code)
    url = f"amqps://localhost:{tls.strict_port}/{hub.broker.vhost}"
    edoc = a.edoc([b.code])

    with sdk(
        hub, a, url, tls_ca_file=tls.ca_file, tls_cert_file=cert_file, tls_key_file=key_file
    ) as client:
        receipt = client.send(edoc).receipt

    assert receipt.document_id == edoc.document_id
    [delivery] = b.take()
    assert delivery.headers["x-axis-receipt-id"] == receipt.receipt_id
