"""Fault injection with real processes and the real RabbitMQ: the harness of ``test_faults.py``.

A run is a stream of signed documents from agency processes through ``axis serve``
into recipients' inboxes, with one fault injected while it flows, followed by a full
account of what happened:

- **senders**: each its own process (``python faults_support.py sender SPEC``), one
  agency with an SDK :class:`adapters.AgencyClient`. It signs its documents up front
  (one in :attr:`Plan.invalid_every` invalid on purpose, in three ways), publishes them
  at a steady pace with publisher confirms, rides out a broker restart (the SDK
  reconnects and re-publishes what was not confirmed, same bytes and message id),
  and writes every answer it verified against the hub's certificate to a JSON file;
- **recipients**: one thread each in the test process, consuming its own inbox
  with its own credentials and acknowledging each message once noted (receipt id,
  SHA-256 of the body, message id, arrival time). A fault can pause one (its
  connection closes, its inbox fills) and resume it;
- **routers**: ``axis serve`` processes on the hub's configuration, which a fault
  can kill with SIGKILL or start anew.

The account (:class:`Counts`) compares three records that do not depend on each
other: what the senders were told (receipts and rejections), what the recipients
received, and what the hub recorded (documents, deliveries, audit events, and a
chain that verifies with its signed heads). :meth:`Counts.problems` lists every
disagreement; a run without fault-induced loss has none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import sqlalchemy as sa

from adapters import AgencyClient
from axis import logs
from axis.audit.verifier import verify_trail
from axis.service import trust_store
from schemas.samples import sample_edoc
from signing import Verifier
from signing.pki import cert_pem, key_pem

DOCS_ENV = "AXIS_FAULT_DOCS"
RATE_ENV = "AXIS_FAULT_RATE"
CI_DOCUMENTS = 600
"""Documents per fault in the CI mode; the full mode is ``AXIS_FAULT_DOCS=5000``."""
DEFAULT_RATE = 100.0
"""Documents per second offered by all senders together: below what the hub routes on
the 2-core development machine while the senders, recipients, RabbitMQ and PostgreSQL
share it, so that latency measures the hub and not a backlog."""
INVALID_KINDS = ("SIGNATURE_INVALID", "UNKNOWN_RECIPIENT", "SENDER_MISMATCH")
"""How a deliberately invalid document is made invalid: the rejection code it must get."""
INBOUND = "axis.inbound"
QUARANTINE = "axis.quarantine"
_LOST = (pika.exceptions.AMQPError, OSError)


@dataclass(frozen=True)
class Plan:
    """The size and shape of one fault run."""

    documents: int = CI_DOCUMENTS
    rate: float = DEFAULT_RATE
    senders: int = 3
    recipients: int = 4
    invalid_every: int = 20

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Plan:
        """The plan for ``AXIS_FAULT_DOCS`` documents at ``AXIS_FAULT_RATE`` per second."""
        documents = _positive(env, DOCS_ENV, CI_DOCUMENTS, int)
        rate = _positive(env, RATE_ENV, DEFAULT_RATE, float)
        return cls(documents=int(documents), rate=float(rate))

    @property
    def seconds(self) -> float:
        """How long the senders take to offer every document, without faults."""
        return self.documents / self.rate


def _positive(env: Mapping[str, str], name: str, default: float, kind: type) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: expected a positive number") from None
    if value <= 0:
        raise ValueError(f"{name}={text!r}: expected a positive number")
    return float(value)


# The sender process.


@dataclass
class _Document:
    intent: str
    """``valid``, or the rejection code the document was made to get."""
    document_id: str | None
    recipients: list[str]
    body: bytes
    sent_at: float = 0.0
    result: Any = None


def _documents(client: AgencyClient, spec: dict[str, Any]) -> list[_Document]:
    """The sender's stream, signed: mostly valid edocs, some invalid on purpose."""
    rng = random.Random(spec["seed"])
    out = []
    for n in range(spec["documents"]):
        recipients = rng.sample(spec["recipients"], rng.choice((1, 2, 2, 3)))
        number = n + 1
        intent = "valid"
        if n % spec["invalid_every"] == spec["invalid_every"] - 1:
            intent = INVALID_KINDS[(n // spec["invalid_every"]) % len(INVALID_KINDS)]
        author = spec["impostor"] if intent == "SENDER_MISMATCH" else spec["code"]
        if intent == "UNKNOWN_RECIPIENT":
            recipients = [*recipients[:1], spec["unknown"]]
        edoc = sample_edoc(author, recipients, document_number=number, rng=rng)
        _, body, document_id = client.prepare(edoc)
        if intent == "SIGNATURE_INVALID":
            tampered = body.replace(b"</edXML:Subject>", " (sửa)</edXML:Subject>".encode(), 1)
            assert tampered != body, "no Subject to tamper with"
            body = tampered
        out.append(_Document(intent, document_id, recipients, body))
    return out


def _outcome(document: _Document) -> dict[str, Any]:
    result = document.result
    record: dict[str, Any] = {
        "intent": document.intent,
        "document_id": document.document_id,
        "recipients": document.recipients,
        "sha256": hashlib.sha256(document.body).hexdigest(),
        "sent_at": document.sent_at,
        "message_id": None if result is None else result.message_id,
        "outcome": "unsent",
        "receipt_id": None,
        "code": None,
        "delivered": [],
    }
    if result is None:
        return record
    if result.receipt is not None:
        record["outcome"] = "receipt"
        record["receipt_id"] = result.receipt.receipt_id
        record["delivered"] = sorted(
            r.organ_id for r in result.receipt.recipients if r.outcome == "delivered"
        )
    elif result.rejected is not None:
        record["outcome"] = "rejection"
        record["receipt_id"] = result.rejected.receipt_id
        record["code"] = result.rejected.code
    elif result.error is not None:
        record["outcome"] = "error"
        record["code"] = str(result.error)
    else:
        record["outcome"] = "pending"
    return record


def sender_main(spec_path: str) -> int:
    """One agency: sign, wait for ``go`` on stdin, send at the pace asked, collect answers."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    logs.configure("json", "warning")
    client = AgencyClient(
        spec["code"],
        key=spec["key"],
        certificate=spec["certificate"],
        trust_anchors=[spec["ca"]],
        password=spec["password"],
        amqp_url=spec["amqp_url"],
        hub_certificate=spec["hub_certificate"],
        auto_ack_status=False,
        reconnect_timeout=spec["answer_timeout"],
    )
    documents = _documents(client, spec)
    with client:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return 2
        start = time.monotonic()
        for n, document in enumerate(documents):
            due = start + n / spec["rate"]
            while (gap := due - time.monotonic()) > 0:
                # Read answers while waiting; flush returns at once when none is pending.
                if client.flush(timeout=min(gap, 0.05)):
                    time.sleep(min(max(0.0, due - time.monotonic()), 0.002))
            document.sent_at = time.time()
            document.result = client.send(document.body, wait=False)
        answered = client.flush(timeout=spec["answer_timeout"])
        reconnects = client.reconnects
    Path(spec["output"]).write_text(
        json.dumps(
            {
                "code": spec["code"],
                "answered": answered,
                "reconnects": reconnects,
                "documents": [_outcome(d) for d in documents],
            }
        ),
        encoding="utf-8",
    )
    return 0


# The test side: senders, recipients, routers.


class Sender:
    """A sender process, from spawn to its answers."""

    def __init__(self, spec: dict[str, Any], folder: Path) -> None:
        self.code = spec["code"]
        self.output = Path(spec["output"])
        self.log = folder / f"sender-{self.code}.log"
        spec_path = folder / f"sender-{self.code}.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, __file__, "sender", str(spec_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.result: dict[str, Any] | None = None

    def wait_ready(self, timeout: float) -> None:
        """Wait until the process has signed its documents and connected."""
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline().strip() if ready else ""
        if line != "ready":
            self.process.kill()
            raise AssertionError(f"sender {self.code} did not start: {self._tail()}")

    def go(self) -> None:
        """Start sending."""
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.close()

    def finish(self, timeout: float) -> dict[str, Any]:
        """Wait for the process to have every answer; its JSON report."""
        if self.result is None:
            try:
                code = self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise AssertionError(f"sender {self.code} still busy: {self._tail()}") from None
            if code != 0:
                raise AssertionError(f"sender {self.code} exited {code}: {self._tail()}")
            self.result = json.loads(self.output.read_text(encoding="utf-8"))
        return self.result

    def kill(self) -> None:
        """Stop a sender left running by a failed test."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def _tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]


@dataclass(frozen=True)
class Arrival:
    """One message a recipient took from its inbox."""

    kind: str
    message_id: str | None
    receipt_id: str | None
    sha256: str
    at: float
    redelivered: bool


class Inbox:
    """A recipient consuming its inbox with its own credentials, in a thread."""

    def __init__(self, code: str, url: str) -> None:
        self.code = code
        self.queue = f"axis.inbox.{code}"
        self.arrivals: list[Arrival] = []
        self.reconnects = 0
        self._parameters = pika.URLParameters(url)
        self._parameters.heartbeat = 30
        self._paused = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"inbox-{code}", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Stop consuming: the connection closes and the inbox fills up."""
        self._paused.set()

    def resume(self) -> None:
        """Consume again."""
        self._paused.clear()

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._paused.is_set():
                time.sleep(0.05)
                continue
            try:
                connection = pika.BlockingConnection(self._parameters)
                try:
                    channel = connection.channel()
                    channel.basic_qos(prefetch_count=256)
                    channel.basic_consume(self.queue, self._on_message)
                    while not self._stop.is_set() and not self._paused.is_set():
                        connection.process_data_events(time_limit=0.05)
                finally:
                    with contextlib.suppress(*_LOST):
                        connection.close()
            except _LOST:
                self.reconnects += 1
                time.sleep(0.5)

    def _on_message(self, channel: Any, method: Any, props: Any, body: bytes) -> None:
        self.arrivals.append(
            Arrival(
                props.type or "",
                props.message_id,
                (props.headers or {}).get("x-axis-receipt-id"),
                hashlib.sha256(body).hexdigest(),
                time.time(),
                bool(method.redelivered),
            )
        )
        channel.basic_ack(method.delivery_tag)

    def pairs(self) -> set[tuple[str | None, str]]:
        """(receipt id, this recipient) of everything arrived so far."""
        return {(a.receipt_id, self.code) for a in list(self.arrivals)}


class Routers:
    """``axis serve`` processes on one hub's configuration."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.processes: list[subprocess.Popen[bytes]] = []
        self.killed: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        """Start one more ``axis serve``."""
        log = self.config_path.with_name(f"serve-{len(self.processes)}.log")
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from cli import main; main()",
                    "--config",
                    str(self.config_path),
                    "serve",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL: no chance to finish anything."""
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        self.killed.append(process)

    def alive(self) -> list[subprocess.Popen[bytes]]:
        """The routers not killed and still running."""
        return [p for p in self.processes if p not in self.killed and p.poll() is None]

    def stop(self, timeout: float = 90) -> list[int | None]:
        """SIGTERM every live router and wait; their exit codes (0: finished cleanly)."""
        live = [p for p in self.processes if p not in self.killed]
        for process in live:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = []
        for process in live:
            try:
                codes.append(process.wait(timeout=timeout))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(None)
        return codes

    def close(self) -> None:
        """Kill whatever a failed test left running."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def wait_for_broker_to_ourselves(broker: Any, timeout: float | None = None) -> float:
    """Wait until no other test session has a connection open on the broker; seconds waited.

    A broker restart breaks every other session's connections, so on a development
    machine shared by several sessions it waits for the connections on other vhosts
    than this session's (``broker.user_tag`` is the session's vhost, the hub's is
    derived from it) to close, for up to ``timeout`` seconds (10 minutes), then goes
    ahead anyway. In CI (``CI`` set) the suite runs alone: no wait.
    """
    if timeout is None:
        timeout = 0.0 if os.environ.get("CI") else 600.0
    started = time.monotonic()
    with broker.management() as mgmt:
        while time.monotonic() - started < timeout:
            others = [
                c
                for c in mgmt.list_connections()
                if not str(c.get("vhost", "")).startswith(broker.user_tag)
            ]
            if not others:
                break
            time.sleep(5)
    return time.monotonic() - started


def restart_rabbitmq() -> float:
    """Stop and start the broker's application (``rabbitmqctl``); seconds it took.

    Every vhost on the broker goes down with it: only for a test run alone.
    """
    started = time.monotonic()
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=180)
    subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=300)
    subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True, timeout=300)
    return time.monotonic() - started


@contextlib.contextmanager
def database_unavailable(admin_url: str, database: str) -> Iterator[None]:
    """PostgreSQL refuses ``database``: new connections refused, existing ones terminated."""
    admin = sa.create_engine(sa.make_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"
                ),
                {"d": database},
            )
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        admin.dispose()


# A run and its account.


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile of ``values`` (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


@dataclass
class Counts:
    """What a fault run sent, what came of it, and every disagreement found."""

    fault: str
    documents: int
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    rejected_by_code: dict[str, int] = field(default_factory=dict)
    deliveries: int = 0
    """(receipt id, recipient) pairs the receipts promised."""
    delivered: int = 0
    """Of those, the pairs that reached the recipient's inbox."""
    messages: int = 0
    """Messages the recipients took (deliveries and their repeats)."""
    duplicates: int = 0
    """Repeats of a delivery, all with the original's receipt id."""
    broker_redelivered: int = 0
    """Of the repeats, those the broker handed out again to a recipient (not the hub)."""
    repeated_rejections: int = 0
    """REJECTED events beyond one per rejected message: a rejected message handled again
    after a crash is rejected again, under a new receipt id (same code)."""
    lost: int = 0
    audit_events: int = 0
    signed_heads: int = 0
    chain_ok: bool = False
    seconds: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def row(self) -> str:
        """One line of the counts table (see :func:`table`)."""
        codes = ",".join(f"{k}:{v}" for k, v in sorted(self.rejected_by_code.items()))
        return (
            f"{self.fault:<22} {self.sent:>6} {self.accepted:>6} {self.rejected:>5} "
            f"{self.repeated_rejections:>5} "
            f"{self.delivered:>7}/{self.deliveries:<7} {self.duplicates:>5} {self.lost:>4} "
            f"{'OK' if self.chain_ok else 'BROKEN':>6} {self.audit_events:>7} "
            f"{self.seconds:>6.1f}  p50/p99 {self.latency_ms.get('p50', 0):.0f}/"
            f"{self.latency_ms.get('p99', 0):.0f} ms  [{codes}]"
        )


TABLE_HEADER = (
    f"{'fault':<22} {'sent':>6} {'accept':>6} {'rej':>5} {'rej+':>5} {'delivered/expected':>15} "
    f"{'dups':>5} {'lost':>4} {'chain':>6} {'events':>7} {'time s':>6}  latency"
)


def table(rows: Iterable[Counts]) -> list[str]:
    """The counts table, one line per fault, with its details under it."""
    lines = [TABLE_HEADER]
    for counts in rows:
        lines.append(counts.row())
        if counts.details:
            lines.append("    " + json.dumps(counts.details, sort_keys=True, default=str))
    return lines


class Run:
    """One stream of documents through a hub, with a fault injected by the caller."""

    def __init__(self, hub: Any, plan: Plan, fault: str, *, routers: int = 1) -> None:
        self.hub = hub
        self.plan = plan
        self.fault = fault
        self.folder = Path(hub.config.source).parent
        self.routers = Routers(Path(hub.config.source))
        self._router_count = routers
        self.senders: list[Sender] = []
        self.inboxes: dict[str, Inbox] = {}
        self.pauses: dict[str, tuple[float, float | None]] = {}
        self.details: dict[str, Any] = {}
        self.started = 0.0
        self.results: list[dict[str, Any]] | None = None

    # Setting up and starting.

    def start(self) -> None:
        """Register agencies, start the routers, recipients and senders; then ``go``."""
        hub, plan = self.hub, self.plan
        senders = [hub.register("FS") for _ in range(plan.senders)]
        recipients = [hub.register("FR") for _ in range(plan.recipients)]
        unknown = hub.broker.unique_code("NOBODY")
        for _ in range(self._router_count):
            self.routers.start()
        self.wait_consumers(self._router_count, timeout=60)
        for agency in recipients:
            self.inboxes[agency.code] = Inbox(agency.code, agency.url)
        per_sender = [plan.documents // plan.senders] * plan.senders
        per_sender[0] += plan.documents - sum(per_sender)
        pki = self.folder / "agency-pki"
        pki.mkdir(exist_ok=True)
        ca = pki / "ca.pem"
        ca.write_bytes(cert_pem(hub.ca.certificate))
        for n, agency in enumerate(senders):
            key, certificate = pki / f"{agency.code}.key", pki / f"{agency.code}.pem"
            key.write_bytes(key_pem(agency.signer.key))
            certificate.write_bytes(cert_pem(agency.signer.certificate))
            spec = {
                "code": agency.code,
                "password": agency.password,
                "amqp_url": hub.broker.amqp_url,
                "key": str(key),
                "certificate": str(certificate),
                "ca": str(ca),
                "hub_certificate": str(hub.config.signing.certificate),
                "recipients": [r.code for r in recipients],
                "unknown": unknown,
                "impostor": senders[(n + 1) % len(senders)].code,
                "documents": per_sender[n],
                "invalid_every": plan.invalid_every,
                "rate": plan.rate / plan.senders,
                "seed": n,
                "answer_timeout": 600,
                "output": str(self.folder / f"sender-{agency.code}.out.json"),
            }
            self.senders.append(Sender(spec, self.folder))
        for sender in self.senders:
            sender.wait_ready(timeout=120)
        self.started = time.monotonic()
        for sender in self.senders:
            sender.go()

    def close(self) -> None:
        """Stop everything still running (after a failure too)."""
        for sender in self.senders:
            sender.kill()
        for inbox in self.inboxes.values():
            inbox.stop()
        self.routers.close()

    # What faults use.

    def recorded(self) -> int:
        """Documents the hub has recorded so far."""
        with self.hub.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM documents")).scalar_one())

    def wait_recorded(self, share: float, timeout: float = 120) -> int:
        """Wait until the hub has recorded ``share`` of the documents; how many it has."""
        target = int(self.plan.documents * share)
        deadline = time.monotonic() + timeout
        while (done := self.recorded()) < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"the hub recorded only {done} of {target} documents")
            time.sleep(0.02)
        return done

    def wait_sent(self, share: float) -> None:
        """Wait until the senders, at their pace, have sent ``share`` of the documents."""
        time.sleep(max(0.0, self.started + share * self.plan.seconds - time.monotonic()))

    def wait_consumers(self, count: int, timeout: float) -> None:
        """Wait until ``count`` routers consume ``axis.inbound``."""
        deadline = time.monotonic() + timeout
        while self.queue(INBOUND)[1] < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"fewer than {count} routers consume {INBOUND}")
            time.sleep(0.2)

    def queue(self, name: str) -> tuple[int, int]:
        """(ready messages, consumers) of a queue, counted by the broker now."""
        connection = pika.BlockingConnection(pika.URLParameters(self.hub.broker.amqp_url))
        try:
            declared = connection.channel().queue_declare(name, passive=True)
            return declared.method.message_count, declared.method.consumer_count
        finally:
            connection.close()

    def arrived(self) -> int:
        """Messages the recipients have taken so far."""
        return sum(len(inbox.arrivals) for inbox in self.inboxes.values())

    def pause(self, code: str) -> None:
        """Recipient ``code`` stops consuming."""
        self.inboxes[code].pause()
        self.pauses[code] = (time.time(), None)

    def resume(self, code: str) -> None:
        """Recipient ``code`` consumes again."""
        self.pauses[code] = (self.pauses[code][0], time.time())
        self.inboxes[code].resume()

    def wait_senders(self) -> list[dict[str, Any]]:
        """Wait for every sender to have all its answers; their records."""
        if self.results is None:
            timeout = self.plan.seconds * 4 + 600
            reports = [s.finish(timeout) for s in self.senders]
            self.details["sender_reconnects"] = sum(r["reconnects"] for r in reports)
            self.results = [d for r in reports for d in r["documents"]]
        return self.results

    def expected(self) -> set[tuple[str, str]]:
        """(receipt id, recipient) of every delivery the receipts promised."""
        return {
            (d["receipt_id"], recipient)
            for d in self.wait_senders()
            if d["outcome"] == "receipt"
            for recipient in d["delivered"]
        }

    def wait_delivered(self, codes: Iterable[str] | None = None, timeout: float = 120) -> bool:
        """Wait until the recipients ``codes`` (all by default) have every promised delivery."""
        chosen = set(self.inboxes if codes is None else codes)
        wanted = {pair for pair in self.expected() if pair[1] in chosen}
        deadline = time.monotonic() + timeout
        while True:
            arrived = set().union(*(self.inboxes[c].pairs() for c in chosen))
            if wanted <= arrived:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)

    # The account.

    def finish(self) -> Counts:
        """Let everything settle, stop the hub, and count (see :class:`Counts`)."""
        results = self.wait_senders()
        for code, (_, resumed) in self.pauses.items():
            if resumed is None:
                self.resume(code)
        self.wait_delivered(timeout=max(120, self.plan.documents / 20))
        seconds = time.monotonic() - self.started
        codes = self.routers.stop()
        counts = Counts(self.fault, self.plan.documents, seconds=round(seconds, 1))
        if any(code != 0 for code in codes):
            counts.problems.append(f"a router did not stop cleanly: exit codes {codes}")
        self._settle_inboxes()
        inbound_left = self.queue(INBOUND)[0]
        quarantined = self.queue(QUARANTINE)[0]
        if inbound_left:
            counts.problems.append(f"{inbound_left} inbound messages were never acknowledged")
        if quarantined:
            counts.problems.append(f"{quarantined} messages were set aside in the quarantine")
        self._count_answers(counts, results)
        self._count_inboxes(counts, results)
        self._count_records(counts, results)
        counts.details.update(self.details)
        counts.details["recipient_reconnects"] = sum(i.reconnects for i in self.inboxes.values())
        return counts

    def _settle_inboxes(self) -> None:
        """Take what is left in the inboxes, then stop the recipients."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            before = self.arrived()
            time.sleep(1.0)
            after = self.arrived()
            if after == before and all(self.queue(i.queue)[0] == 0 for i in self.inboxes.values()):
                break
        for inbox in self.inboxes.values():
            inbox.stop()

    def _count_answers(self, counts: Counts, results: list[dict[str, Any]]) -> None:
        counts.sent = sum(1 for d in results if d["outcome"] != "unsent")
        counts.accepted = sum(1 for d in results if d["outcome"] == "receipt")
        counts.rejected = sum(1 for d in results if d["outcome"] == "rejection")
        counts.rejected_by_code = dict(
            Counter(d["code"] for d in results if d["outcome"] == "rejection")
        )
        if counts.sent != counts.documents:
            counts.problems.append(f"only {counts.sent} of {counts.documents} documents were sent")
        wrong = Counter(
            (d["intent"], d["outcome"], d["code"])
            for d in results
            if (d["intent"] == "valid") != (d["outcome"] == "receipt")
            or (d["intent"] != "valid" and d["code"] != d["intent"])
        )
        if wrong:
            counts.problems.append(f"answers other than intended (intent, outcome, code): {wrong}")
        promised = Counter(
            d["document_id"]
            for d in results
            if d["outcome"] == "receipt" and sorted(d["delivered"]) != sorted(d["recipients"])
        )
        if promised:
            counts.problems.append(
                f"receipts naming other recipients than the documents': {promised}"
            )
        receipt_ids = [d["receipt_id"] for d in results if d["outcome"] == "receipt"]
        if len(set(receipt_ids)) != len(receipt_ids):
            counts.problems.append("two accepted documents share a receipt id")

    def _count_inboxes(self, counts: Counts, results: list[dict[str, Any]]) -> None:
        by_receipt = {d["receipt_id"]: d for d in results if d["outcome"] == "receipt"}
        expected = self.expected()
        arrived: set[tuple[str, str]] = set()
        receipt_ids_by_message: dict[tuple[str | None, str], set[str | None]] = defaultdict(set)
        first_arrival: dict[tuple[str, str], float] = {}
        unexpected: list[str] = []
        for code, inbox in self.inboxes.items():
            for a in inbox.arrivals:
                counts.messages += 1
                pair = (a.receipt_id or "", code)
                document = by_receipt.get(a.receipt_id)
                if a.kind != "edoc" or pair not in expected or document is None:
                    unexpected.append(f"{a.kind} {a.receipt_id} in {code}")
                    continue
                if a.sha256 != document["sha256"] or a.message_id != document["message_id"]:
                    unexpected.append(f"{a.receipt_id} in {code} is not the bytes sent")
                receipt_ids_by_message[(a.message_id, code)].add(a.receipt_id)
                if pair in arrived:
                    counts.duplicates += 1
                    counts.broker_redelivered += a.redelivered
                else:
                    arrived.add(pair)
                    first_arrival[pair] = a.at
        counts.deliveries = len(expected)
        counts.delivered = len(arrived)
        counts.lost = len(expected - arrived)
        if counts.lost:
            sample = sorted(expected - arrived)[:5]
            counts.problems.append(f"{counts.lost} deliveries never arrived, e.g. {sample}")
        if unexpected:
            counts.problems.append(f"{len(unexpected)} unexpected messages: {unexpected[:5]}")
        mixed = [k for k, ids in receipt_ids_by_message.items() if len(ids) > 1]
        if mixed:
            counts.problems.append(f"repeats under another receipt id: {mixed[:5]}")
        latencies = [
            (at - by_receipt[receipt_id]["sent_at"]) * 1000
            for (receipt_id, _), at in first_arrival.items()
        ]
        counts.latency_ms = _latency(latencies)
        for code, (paused, resumed) in self.pauses.items():
            self._count_pause(counts, code, paused, resumed or time.time(), first_arrival, results)

    def _count_pause(
        self,
        counts: Counts,
        code: str,
        paused: float,
        resumed: float,
        first_arrival: dict[tuple[str, str], float],
        results: list[dict[str, Any]],
    ) -> None:
        def others(sent_from: float, sent_until: float) -> list[tuple[float | None, float]]:
            """(arrival, sent) of the deliveries to the other recipients sent in that window."""
            return [
                (first_arrival.get((d["receipt_id"], r)), d["sent_at"])
                for d in results
                if d["outcome"] == "receipt" and sent_from <= d["sent_at"] < sent_until
                for r in d["delivered"]
                if r != code
            ]

        during = others(paused, resumed)
        late = sum(1 for at, _ in during if at is None or at >= resumed)
        if late:
            counts.problems.append(
                f"{late} deliveries to other recipients waited for {code} to resume"
            )
        counts.details["paused_recipient"] = {
            "paused_s": round(resumed - paused, 1),
            "deliveries_to_others_meanwhile": len(during),
            # The same run's baseline: the others' latency before the pause.
            "others_latency_before_ms": _latency(
                [(at - sent) * 1000 for at, sent in others(0, paused) if at]
            ),
            "others_latency_during_ms": _latency([(at - sent) * 1000 for at, sent in during if at]),
        }

    @staticmethod
    def _count_rejections(counts: Counts, results: list[dict[str, Any]], events: list[Any]) -> None:
        """Each rejection a sender got is a REJECTED event of its code, and each REJECTED
        event is about a message sent invalid on purpose, with the code it was made for."""
        invalid = {d["message_id"]: d for d in results if d["intent"] != "valid"}
        codes = {event.receipt_id: event.code for event in events}
        missing = [
            d["receipt_id"]
            for d in results
            if d["outcome"] == "rejection" and codes.get(d["receipt_id"]) != d["code"]
        ]
        if missing:
            counts.problems.append(
                f"{len(missing)} rejections have no REJECTED event of their code"
            )
        messages: Counter[str] = Counter()
        for event in events:
            detail = json.loads(event.detail)
            sent = invalid.get(detail.get("message_id"))
            if sent is None or (sent["intent"], sent["sha256"]) != (event.code, detail["sha256"]):
                counts.problems.append(
                    f"REJECTED event {event.receipt_id} is for no invalid message"
                )
                continue
            messages[detail["message_id"]] += 1
        counts.repeated_rejections = sum(messages.values()) - len(messages)
        if len(messages) != len(invalid):
            counts.problems.append(
                f"{len(invalid)} invalid messages sent, {len(messages)} with REJECTED events"
            )

    def _count_records(self, counts: Counts, results: list[dict[str, Any]]) -> None:
        accepted = {d["receipt_id"] for d in results if d["outcome"] == "receipt"}
        expected = self.expected()
        self.hub.engine.dispose()  # connections from before an outage are gone
        with self.hub.engine.connect() as conn:

            def rows(sql: str) -> list[Any]:
                return list(conn.execute(sa.text(sql)))

            events = "SELECT receipt_id, recipient, code FROM audit_events WHERE event = "
            received = [r[0] for r in rows(events + "'RECEIVED'")]
            refused = rows(
                "SELECT receipt_id, code, detail FROM audit_events WHERE event = 'REJECTED'"
            )
            delivered_events = [(r[0], r[1]) for r in rows(events + "'DELIVERED'")]
            deliveries = rows("SELECT receipt_id, recipient, delivered_at FROM deliveries")
            documents = rows("SELECT count(*) FROM documents")[0][0]
            # A router archives the bodies it records in segments named with its pid.
            killed = [
                conn.execute(
                    sa.text("SELECT count(*) FROM archive_entries WHERE segment LIKE :p"),
                    {"p": f"%-{process.pid}-%"},
                ).scalar_one()
                for process in self.routers.killed
            ]
            verification = verify_trail(conn, Verifier(trust_store(self.hub.config)))
        report = verification.report
        if killed:
            counts.details["killed_routers_recorded"] = killed
        counts.audit_events = report.checked
        counts.signed_heads = report.heads_checked
        counts.chain_ok = report.ok
        if not report.ok:
            counts.problems.append(f"the audit chain does not verify: {report.problem}")
        if len(received) != len(set(received)) or set(received) != accepted:
            counts.problems.append(
                f"RECEIVED events ({len(received)}) do not match the receipts ({len(accepted)})"
            )
        if documents != len(accepted):
            counts.problems.append(f"{documents} documents recorded for {len(accepted)} receipts")
        self._count_rejections(counts, results, refused)
        if set(delivered_events) != expected:
            counts.problems.append(
                f"DELIVERED events ({len(set(delivered_events))} pairs) do not match "
                f"the deliveries promised ({len(expected)})"
            )
        repeated = len(delivered_events) - len(set(delivered_events))
        if repeated:
            counts.problems.append(f"{repeated} deliveries have more than one DELIVERED event")
        if {(r[0], r[1]) for r in deliveries} != expected:
            counts.problems.append("the deliveries table does not match the deliveries promised")
        pending = sum(1 for r in deliveries if r[2] is None)
        if pending:
            counts.problems.append(f"{pending} deliveries are recorded as not confirmed")


def _latency(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 0.50), 1),
        "p99": round(percentile(values, 0.99), 1),
        "max": round(max(values, default=0.0), 1),
    }


def run_fault(
    hub: Any,
    plan: Plan,
    fault: str,
    inject: Callable[[Run], None],
    *,
    routers: int = 1,
) -> Counts:
    """Stream ``plan`` through ``hub`` while ``inject`` does its damage; count."""
    run = Run(hub, plan, fault, routers=routers)
    try:
        run.start()
        inject(run)
        return run.finish()
    finally:
        run.close()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "sender":
        sys.exit("usage: faults_support.py sender SPEC.json")
    sys.exit(sender_main(sys.argv[2]))
