"""Running processes keep their passwords out of their logs and their command lines.

``axis serve --workers 2`` takes the hub's broker password from ``password_file`` or
from ``AXIS_BROKER_PASSWORD``, logs at debug level while it routes a document and a
rejection, and the test reads every line it wrote and ``/proc/<pid>/cmdline`` of the
hub and each of its worker processes (what ``ps`` shows every user). The folder
bridge gets the same treatment with an agency's password.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

import schemas
from signing.pki import cert_pem, key_pem

SERVE = [sys.executable, "-m", "cli"]


def descendants(pid: int) -> list[int]:
    """``pid``'s children, grandchildren and so on, from /proc."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append(child)
                pending.append(child)
    return found


def command_line(pid: int) -> str:
    """What ``ps`` shows of ``pid``: its arguments, NUL-separated in /proc."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.fixture(autouse=True)
def linux_proc() -> None:
    if not Path("/proc/self/cmdline").exists():
        pytest.skip("needs /proc to read command lines")


@pytest.mark.parametrize("source", ["password_file", "environment"])
def test_axis_serve_with_two_workers_never_logs_or_shows_its_password(
    idle_hub, source: str
) -> None:
    hub = idle_hub
    password = hub.config.broker.secret()
    assert len(password) >= 16
    hub_key = hub.config.signing.key.read_text()
    env = {
        **os.environ,
        "AXIS_LOG_LEVEL": "debug",
        "AXIS_LOG_FORMAT": "json",
        "PYTHONPATH": str(Path(__file__).parents[2]),
    }
    if source == "environment":
        env |= {"AXIS_BROKER_PASSWORD_FILE": "", "AXIS_BROKER_PASSWORD": password}
    a, b = hub.register("PWA"), hub.register("PWB")
    log_path = hub.config.source.with_name(f"serve-{source}.log")
    with log_path.open("wb") as log:
        serve = subprocess.Popen(
            [*SERVE, "--config", str(hub.config.source), "serve", "--workers", "2"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        with hub.broker.management() as mgmt:
            wait_for(
                lambda: mgmt.queue(hub.broker.vhost, "axis.inbound")["consumers"] == 2,
                60,
                "both workers to consume",
            )
        processes = [serve.pid, *descendants(serve.pid)]
        command_lines = {pid: command_line(pid) for pid in processes}
        body = a.sign(a.edoc([b.code]))
        a.publish(body)
        a.publish(b"<not-xml", message_id="bad-1")
        answers = sorted(m.type for m in a.take(2, timeout=30))
        delivered = b.take(timeout=30)
    finally:
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=90)
    logged = log_path.read_text(encoding="utf-8", errors="replace")

    assert code == 0, logged[-2000:]
    assert answers == ["receipt", "rejection"]
    assert [m.body for m in delivered] == [body]
    assert len(processes) >= 3, f"the hub and two workers: {command_lines}"
    for pid, line in command_lines.items():
        assert password not in line, f"process {pid} shows the password: {line}"
    assert logged.count('"router.consuming"') == 2, logged[-2000:]
    assert '"document.rejected"' in logged or "MALFORMED" in logged
    assert password not in logged
    assert hub_key.splitlines()[1] not in logged, "a line of the hub's private key was logged"


def test_a_wrong_password_is_reported_without_being_logged(idle_hub) -> None:
    hub = idle_hub
    wrong = "Wrong-" + "x" * 20
    done = subprocess.run(
        [*SERVE, "--config", str(hub.config.source), "serve"],
        env={
            **os.environ,
            "AXIS_LOG_LEVEL": "debug",
            "AXIS_BROKER_PASSWORD_FILE": "",
            "AXIS_BROKER_PASSWORD": wrong,
            "PYTHONPATH": str(Path(__file__).parents[2]),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 1
    assert "cannot connect to the broker" in done.stderr
    assert "ACCESS_REFUSED" in done.stderr
    assert wrong not in done.stdout + done.stderr


def test_the_folder_bridge_never_logs_or_shows_the_agency_password(hub, tmp_path) -> None:
    a, b = hub.register("BRA"), hub.register("BRB")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "amqp.password").write_text(a.password + "\n")
    (keys / "agency.key").write_bytes(key_pem(a.signer.key))
    (keys / "agency.pem").write_bytes(cert_pem(a.signer.certificate))
    (keys / "ca.pem").write_bytes(cert_pem(hub.ca.certificate))
    root = tmp_path / "bridge"
    (root / "outbox").mkdir(parents=True)
    (root / "outbox" / "letter.xml").write_bytes(schemas.to_bytes(a.edoc([b.code])))
    parts = urlsplit(hub.broker.amqp_url)
    url = urlunsplit((parts.scheme, f"{parts.hostname}:{parts.port or 5672}", parts.path, "", ""))
    log_path = tmp_path / "bridge.log"
    # The key file is read once: its content must not be logged either.
    agency_key_line = (keys / "agency.key").read_text().splitlines()[1]
    with log_path.open("wb") as log:
        bridge = subprocess.Popen(
            [
                *SERVE,
                "bridge",
                "folder",
                "--agency",
                a.code,
                "--root",
                str(root),
                "--amqp-url",
                url,
                "--password-file",
                str(keys / "amqp.password"),
                "--key",
                str(keys / "agency.key"),
                "--cert",
                str(keys / "agency.pem"),
                "--trust",
                str(keys / "ca.pem"),
                "--hub-cert",
                str(hub.config.signing.certificate),
                "--settle",
                "0",
                "--interval",
                "0.2",
                "--log-format",
                "json",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        )
    try:
        wait_for(lambda: (root / "sent" / "letter.receipt.xml").exists(), 60, "the receipt")
        command_lines = [command_line(pid) for pid in [bridge.pid, *descendants(bridge.pid)]]
    finally:
        bridge.send_signal(signal.SIGTERM)
        code = bridge.wait(timeout=60)
    logged = log_path.read_text(encoding="utf-8", errors="replace")

    assert code == 0, logged[-2000:]
    assert len(b.take(timeout=15)) == 1
    assert all(a.password not in line for line in command_lines), command_lines
    assert logged and a.password not in logged
    assert agency_key_line not in logged


def test_the_folder_bridge_refuses_a_url_carrying_a_password(tmp_path) -> None:
    done = subprocess.run(
        [
            *SERVE,
            "bridge",
            "folder",
            "--agency",
            "000.00.00.G22",
            "--root",
            str(tmp_path),
            "--amqp-url",
            "amqp://000.00.00.G22:Visible-In-ps@127.0.0.1:5672/",
            "--password-file",
            __file__,
            "--key",
            __file__,
            "--cert",
            __file__,
            "--trust",
            __file__,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )

    assert done.returncode == 2
    assert "--password-file" in done.stderr
    assert "Visible-In-ps" not in done.stderr
