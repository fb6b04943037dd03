"""``axis demo``: the national axis, live, on this machine.

A real hub (``axis serve`` in its own process, on a RabbitMQ vhost of its own and a
SQLite database in the demo folder) and up to 95 simulated agencies, each with its
own broker login, signing key and :class:`adapters.AgencyClient`. The agencies send
a realistic mix: letters between ministries and provinces, a directive from the
Government Office to ``@provinces``, replies, statuses 01 → 03 → 05 → 06, a revoke
and an update, and a few invalid documents so that rejections show. The summary
counts what was sent, accepted, rejected and delivered, and checks that every
accepted delivery arrived (``lost`` must be 0) and that the audit trail verifies.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import functools
import math
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import adapters
import schemas
from axis import db
from axis.admin import Admin, read_agencies_csv
from axis.audit.verifier import verify_trail
from axis.broker.management import Management
from axis.config import Config, load
from axis.hubdir import DEFAULT_MANAGEMENT_URL, init_hub
from axis.service import trust_store
from schemas import files
from schemas.samples import pdf_like, sample_edoc
from signing import Verifier

DEMO_VHOST = "axis-demo"
DEMO_HUB = "axis-demo-hub"
GOVERNMENT_OFFICE = "000.00.00.G22"
AGENCIES_CSV = Path(__file__).with_name("data") / "agencies.csv"
INVALID_SHARE = 0.03
REPLY_SHARE = 0.06
ZIPPED_EVERY = 5
"""Every fifth document carries a file wrapped in a ZIP, as the national SDK sends them."""
STATUS_STEPS = ("03", "05", "06")
COMPLETE_SHARE = 0.7
"""Share of received documents the recipient works through to 06 (completed)."""


@dataclass
class Tally:
    """What happened, counted as it happens (shared by the agency threads)."""

    sent: int = 0
    accepted: int = 0
    rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    delivered: int = 0
    statuses: int = 0
    expected: set[tuple[str, str]] = field(default_factory=set)
    """(receipt id, recipient) pairs the hub's receipts promised."""
    arrived: set[tuple[str, str]] = field(default_factory=set)
    duplicates: int = 0
    latencies: list[float] = field(default_factory=list)
    sent_by: collections.Counter[str] = field(default_factory=collections.Counter)
    received_by: collections.Counter[str] = field(default_factory=collections.Counter)
    documents_delivered: set[tuple[str, str]] = field(default_factory=set)
    """(DocumentId, recipient) of every new document delivered."""
    completed: set[tuple[str, str]] = field(default_factory=set)
    """(DocumentId, recipient) for which the recipient reported 06 (completed)."""
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Agency:
    """A simulated agency: its client, and what it still has to do."""

    code: str
    client: adapters.AgencyClient
    inbox: list[schemas.Edoc] = field(default_factory=list)
    work: collections.deque[tuple[str, str, str]] = field(default_factory=collections.deque)
    """(document id, its sender, next status code) still to send."""
    results: list[adapters.SendResult] = field(default_factory=list)


def prepare(
    folder: Path,
    agencies: int,
    report: Callable[[str], None],
    user_tags: tuple[str, ...] = (),
    *,
    vhost: str = DEMO_VHOST,
    hub_name: str = DEMO_HUB,
    key_algorithm: str = "ec",
    database_url: str | None = None,
) -> tuple[Config, dict[str, str]]:
    """A fresh hub folder with ``agencies`` registered; return the config and passwords.

    Each agency gets a dev certificate with a ``key_algorithm`` key (``ec`` or ``rsa``).
    The database is SQLite in the folder, or ``database_url`` (which must be empty).
    """
    if folder.exists():
        shutil.rmtree(folder)
    with Management(DEFAULT_MANAGEMENT_URL, "guest", "guest") as mgmt:
        mgmt.delete_vhost(vhost)  # no message of an earlier run may reach this one
    config_path = init_hub(
        folder,
        vhost=vhost,
        hub_name=hub_name,
        force=True,
        database_url=database_url,
        user_tags=user_tags,
        report=lambda line: None,
    )
    config = load(config_path)
    rows = read_agencies_csv(AGENCIES_CSV)
    office = [r for r in rows if r["code"] == GOVERNMENT_OFFICE]
    chosen = (office + [r for r in rows if r["code"] != GOVERNMENT_OFFICE])[:agencies]
    subset = folder / "agencies.csv"
    with subset.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=["code", "name", "name_en", "kind"], extrasaction="ignore"
        )
        writer.writeheader()
        writer.writerows(chosen)
    report(f"registering {len(chosen)} agencies (dev certificates, RabbitMQ users, inboxes)")
    passwords: dict[str, str] = {}
    with Admin.from_config(config, user_tags=user_tags) as admin:
        result = admin.import_agencies(
            subset,
            folder / "certs",
            issue_missing_from_ca=folder / "pki",
            key_algorithm=key_algorithm,
        )
        for registration in result.registrations:
            password = (
                registration.amqp_password or admin.reset_password(registration.code).amqp_password
            )
            assert password is not None
            passwords[registration.code] = password
    return config, passwords


def start_hub(config: Config, workers: int, log_path: Path) -> subprocess.Popen[bytes]:
    """``axis serve`` in its own process (it outlives the demo with ``--keep``)."""
    log = log_path.open("ab")
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from cli import main; main()",
            "--config",
            str(config.source),
            "serve",
            "--workers",
            str(workers),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def connect(config: Config, folder: Path, passwords: dict[str, str]) -> dict[str, Agency]:
    """One :class:`adapters.AgencyClient` per agency, each with its own login and key."""
    agencies = {}
    for code, password in passwords.items():
        client = adapters.AgencyClient(
            code,
            key=folder / "certs" / f"{code}.key",
            certificate=folder / "certs" / f"{code}.pem",
            trust_anchors=[folder / "pki" / "ca.pem"],
            hub_certificate=config.signing.certificate,
            password=password,
            host="127.0.0.1",
            vhost=config.broker.vhost,
            prefetch=256,
        )
        agencies[code] = Agency(code, client)
    return agencies


class Simulation:
    """The agencies' traffic: a script of sends, and reactions to what arrives."""

    def __init__(
        self, agencies: dict[str, Agency], documents: int, rng: random.Random, tally: Tally
    ) -> None:
        self.agencies = agencies
        self.documents = documents
        self.rng = rng
        self.tally = tally
        self.codes = sorted(agencies)
        self.provinces = [c for c in self.codes if ".H" in c]
        self.sent_documents: dict[str, tuple[str, schemas.Edoc]] = {}
        self.published_at: dict[str, float] = {}
        self.directive: str | None = None
        """The DocumentId of the directive to @provinces, for the tour."""
        self._number = 0

    def script(self) -> list[Callable[[], Any]]:
        """The documents to send, in order, each as a function that sends it."""
        steps: list[Callable[[], Any]] = []
        office = GOVERNMENT_OFFICE if GOVERNMENT_OFFICE in self.agencies else self.codes[0]
        if self.provinces:
            steps.append(lambda: self._edoc(office, ["@provinces"], steering=2, priority=2))
        invalid = max(3, int(self.documents * INVALID_SHARE))
        letters = max(0, self.documents - len(steps) - invalid - 2)
        for _ in range(letters):
            sender = self.rng.choice(self.codes)
            others = [c for c in self.codes if c != sender]
            recipients = self.rng.sample(
                others, k=min(len(others), self.rng.choice((1, 1, 1, 2, 3)))
            )
            steps.append(functools.partial(self._edoc, sender, recipients))
        for kind in ("revoke", "update", "replace", "recall"):
            steps.append(functools.partial(self._amend, kind))
        for n in range(invalid):
            steps.append(functools.partial(self._invalid, n))
        head, tail = steps[:1], steps[1:]
        self.rng.shuffle(tail)
        return head + tail

    def _next_number(self) -> int:
        self._number += 1
        return self._number

    def _edoc(
        self, sender: str, recipients: list[str], *, steering: int = 1, priority: int = 0, **kw: Any
    ) -> None:
        edoc = sample_edoc(
            sender,
            recipients,
            document_number=self._next_number(),
            rng=self.rng,
            priority=priority,
            **kw,
        )
        if steering != 1:
            edoc = dataclasses.replace(edoc, steering_type=schemas.SteeringType(steering))
        if self._number % ZIPPED_EVERY == 0:
            edoc = _with_zipped_file(edoc, self.rng)
        if recipients == ["@provinces"]:
            self.directive = edoc.document_id
        self.sent_documents[edoc.document_id] = (sender, edoc)
        self._send(sender, edoc)

    def _send(
        self, sender: str, document: schemas.Edoc | bytes, document_id: str | None = None
    ) -> None:
        agency = self.agencies[sender]
        key = document.document_id if isinstance(document, schemas.Edoc) else document_id
        if key:
            self.published_at[key] = time.monotonic()
        agency.results.append(agency.client.send(document, wait=False))
        with self.tally.lock:
            self.tally.sent += 1
            self.tally.sent_by[sender] += 1

    def _amend(self, kind: str) -> None:
        if not self.sent_documents:
            return
        original_id = self.rng.choice(sorted(self.sent_documents))
        sender, original = self.sent_documents[original_id]
        if kind == "recall":
            # 13: the sender asks a recipient to recall; the recipient answers 15.
            agency = self.agencies[sender]
            to = original.recipient_ids[0]
            if to.startswith("@"):
                return
            agency.results.append(
                agency.client.send_status(
                    original_id, "13", "Đề nghị thu hồi", to=to, document=original, wait=False
                )
            )
            return
        if kind == "replace":
            recipients = [r.organ_id for r in original.recipients]
            business = schemas.Business(
                schemas.BusinessDocType.REPLACE,
                "Thay thế văn bản ban hành nhầm",
                replacements=(schemas.Replacement(original_id, tuple(recipients)),),
            )
            self._edoc(sender, recipients, business=business)
            return
        if kind == "revoke":
            # As the national SDK does: the original's header again, its DocumentId included.
            business = schemas.Business(
                schemas.BusinessDocType.REVOKE, "Ban hành nhầm, đề nghị thu hồi"
            )
            self._send(sender, dataclasses.replace(original, business=business))
            return
        business = schemas.Business(
            schemas.BusinessDocType.UPDATE, "Cập nhật phụ lục kèm theo", original_id
        )
        self._edoc(sender, [r.organ_id for r in original.recipients], business=business)

    def _invalid(self, n: int) -> None:
        sender, other = self.rng.sample(self.codes, 2)
        agency = self.agencies[sender]
        edoc = sample_edoc(sender, [other], document_number=self._next_number(), rng=self.rng)
        match n % 4:
            case 0:  # changed after signing
                body = agency.client.prepare(edoc)[1].replace(b"Subject>", b"Subject>X", 1)
                self._send(sender, body)
            case 1:  # to an agency that does not exist
                self._send(
                    sender,
                    dataclasses.replace(edoc, recipients=(schemas.Organization("000.00.00.Z99"),)),
                )
            case 2:  # claims to come from someone else
                forged = sample_edoc(
                    other, [sender], document_number=self._next_number(), rng=self.rng
                )
                self._send(sender, forged)
            case _:  # the same DocumentId again with other content
                if self.sent_documents:
                    original_id = self.rng.choice(sorted(self.sent_documents))
                    owner, original = self.sent_documents[original_id]
                    self._send(
                        owner,
                        dataclasses.replace(original, subject=original.subject + " (bản khác)"),
                    )
                else:
                    self._send(
                        sender,
                        dataclasses.replace(
                            edoc, recipients=(schemas.Organization("000.00.00.Z99"),)
                        ),
                    )

    def react(self, agency: Agency) -> int:
        """Take what arrived for ``agency``; answer with statuses and some replies."""
        taken = 0
        for delivery in agency.client.receive(timeout=0):
            taken += 1
            if delivery.kind == "edoc" and delivery.verified:
                self._on_document(agency, delivery)
            elif delivery.kind == "status":
                status = delivery.status if delivery.verified else None
                if status is not None and status.code == schemas.StatusCode.RECALL_REQUESTED:
                    agency.results.append(
                        agency.client.send_status(
                            status.document_id,
                            "15",
                            "Đồng ý thu hồi",
                            to=status.sender_id,
                            wait=False,
                        )
                    )
                with self.tally.lock:
                    self.tally.statuses += 1
                    if status is not None and str(status.code) == "06":
                        self.tally.completed.add((status.document_id, status.sender_id))
        while agency.work and self.rng.random() < 0.5:
            document_id, sender, code = agency.work.popleft()
            agency.results.append(
                agency.client.send_status(document_id, code, to=sender, wait=False)
            )
            next_step = STATUS_STEPS.index(code) + 1
            if next_step < len(STATUS_STEPS):
                agency.work.append((document_id, sender, STATUS_STEPS[next_step]))
        return taken

    def _on_document(self, agency: Agency, delivery: adapters.Delivery) -> None:
        edoc = delivery.edoc
        assert edoc is not None
        now = time.monotonic()
        with self.tally.lock:
            pair = (delivery.receipt_id or "", agency.code)
            if pair in self.tally.arrived:
                self.tally.duplicates += 1
                return
            self.tally.arrived.add(pair)
            self.tally.delivered += 1
            self.tally.received_by[agency.code] += 1
            started = self.published_at.get(edoc.document_id)
            if started is not None:
                self.tally.latencies.append((now - started) * 1000)
        if edoc.business.doc_type != schemas.BusinessDocType.NEW:
            return
        with self.tally.lock:
            self.tally.documents_delivered.add((edoc.document_id, agency.code))
        if self.rng.random() < COMPLETE_SHARE:
            agency.work.append((edoc.document_id, edoc.sender.organ_id, "03"))
        if self.rng.random() < REPLY_SHARE and edoc.sender.organ_id in self.agencies:
            reply = sample_edoc(
                agency.code,
                [edoc.sender.organ_id],
                document_number=self._next_number(),
                rng=self.rng,
                response_for=[schemas.ResponseFor.of(edoc)],
            )
            self.sent_documents[reply.document_id] = (agency.code, reply)
            self._send(agency.code, reply)

    def collect_answers(self) -> None:
        """Fold the hub's answers into the tally (receipts promise deliveries)."""
        for agency in self.agencies.values():
            pending = []
            for result in agency.results:
                if not result.done:
                    pending.append(result)
                    continue
                if result.kind != "edoc":
                    continue
                with self.tally.lock:
                    if result.receipt is not None:
                        self.tally.accepted += 1
                        receipt_id = result.receipt.receipt_id
                        for outcome in result.receipt.recipients:
                            if outcome.outcome == "delivered":
                                self.tally.expected.add((receipt_id, outcome.organ_id))
                    elif result.rejected is not None:
                        self.tally.rejected[result.rejected.code] += 1
            agency.results = pending


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def run(
    folder: Path,
    *,
    documents: int = 300,
    agencies: int = 95,
    workers: int = 1,
    keep: bool = False,
    seed: int = 1,
    user_tags: tuple[str, ...] = (),
    progress: Callable[[str], None] = lambda line: None,
    report: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Run the demo and return its summary (what ``--json`` prints).

    ``user_tags`` are put on every RabbitMQ user the demo creates (tests use them
    to remove the users afterwards).
    """
    rng = random.Random(seed)
    config, passwords = prepare(folder, agencies, report, user_tags)
    report(f"starting the hub: axis serve --workers {workers} (log: {folder / 'hub.log'})")
    hub = start_hub(config, workers, folder / "hub.log")
    tally = Tally()
    started = time.monotonic()
    try:
        sims = connect(config, folder, passwords)
        simulation = Simulation(sims, documents, rng, tally)
        steps = simulation.script()
        report(f"{len(sims)} agencies connected; sending {len(steps)} documents")
        last_progress = 0.0
        everyone = list(sims.values())
        for step in steps:
            step()
            # Every agency reads its inbox after every send, so the latency measured is
            # the hub's and the broker's, not the simulation's polling.
            for agency in everyone:
                simulation.react(agency)
            if time.monotonic() - last_progress > 0.3:
                simulation.collect_answers()
                progress(_progress_line(tally))
                last_progress = time.monotonic()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            busy = sum(simulation.react(a) for a in sims.values())
            simulation.collect_answers()
            progress(_progress_line(tally))
            waiting = any(a.results for a in sims.values()) or any(a.work for a in sims.values())
            missing = tally.expected - tally.arrived
            if not busy and not waiting and not missing:
                break
        for agency in sims.values():
            agency.client.flush(timeout=10)
            agency.client.close()
        elapsed = time.monotonic() - started
        audit_ok, audit_line = _verify(config)
        summary = _summary(tally, simulation, elapsed, audit_ok)
        summary["audit"] = audit_line
        summary["folder"] = str(folder)
        summary["hub_pid"] = hub.pid if keep else None
        return summary
    finally:
        if not keep:
            hub.send_signal(signal.SIGTERM)
            try:
                hub.wait(timeout=60)
            except subprocess.TimeoutExpired:
                hub.kill()


def _progress_line(t: Tally) -> str:
    return (
        f"sent {t.sent}  accepted {t.accepted}  rejected {sum(t.rejected.values())}  "
        f"delivered {t.delivered}  statuses {t.statuses}"
    )


def _verify(config: Config) -> tuple[bool, str]:
    engine = db.make_engine(config.database.url, writer=False)
    try:
        with engine.connect() as conn:
            result = verify_trail(conn, Verifier(trust_store(config)))
    finally:
        engine.dispose()
    report = result.report
    if report.ok:
        return (
            True,
            f"OK: {report.checked} events, {report.heads_checked} signed heads, "
            f"head {report.last_hash[:16]}…",
        )
    assert report.problem is not None
    return False, f"BROKEN at seq {report.problem.seq}: {report.problem.reason}"


def _summary(t: Tally, simulation: Simulation, elapsed: float, audit_ok: bool) -> dict[str, Any]:
    outstanding = len(t.documents_delivered - t.completed)
    return {
        "sent": t.sent,
        "accepted": t.accepted,
        "rejected": sum(t.rejected.values()),
        "rejections": dict(sorted(t.rejected.items())),
        "delivered": t.delivered,
        "lost": len(t.expected - t.arrived),
        "duplicates": t.duplicates,
        "statuses_received": t.statuses,
        "completed": len(t.completed),
        "outstanding": outstanding,
        "audit_ok": audit_ok,
        "latency_ms": {
            "p50": round(percentile(t.latencies, 0.5), 1),
            "p99": round(percentile(t.latencies, 0.99), 1),
        },
        "seconds": round(elapsed, 1),
        "top_senders": t.sent_by.most_common(10),
        "top_recipients": t.received_by.most_common(10),
        "agencies": len(simulation.agencies),
        "example_document_id": simulation.directive,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _with_zipped_file(edoc: schemas.Edoc, rng: random.Random) -> schemas.Edoc:
    """``edoc`` carrying a PDF in the national SDK's ZIP wrapping (application/zip)."""
    name = f"{edoc.number}_{edoc.notation}.pdf".replace("/", "-")
    wrapped = files.wrap(name, pdf_like(2048, rng))
    attachment = schemas.Attachment("cid:1", "application/zip", name, wrapped)
    return dataclasses.replace(edoc, attachments=(attachment,), manifest=())
