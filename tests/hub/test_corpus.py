"""The bad-input corpus (``tests/corpus``) against one real ``axis serve`` process.

Each case of the table is published with its crafted body and AMQP properties and
must get its documented answer: a hub-signed rejection with the expected code and
a ``REJECTED`` audit event carrying that code; for a message without ``user_id``,
the quarantine queue and a ``QUARANTINED`` event; for an attack that cannot work,
a receipt and an unchanged delivery. After the corpus the hub still serves (same
process, a valid document delivered, the audit chain verifies), nothing refused
was ever delivered, and the whole corpus, replayed in random order under a steady
stream of valid documents (100 docs/s), neither loses nor stalls any of them.

One hub serves the module: its registry state (suspended agencies, revoked
certificates, a CRL) is set up before ``axis serve`` starts, so no case waits for
the registry cache.
"""

from __future__ import annotations

import itertools
import json
import os
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pika
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import schemas  # noqa: E402
from axis import registry  # noqa: E402
from axis.audit import store as audit  # noqa: E402
from axis.broker.testing import BrokerEnv  # noqa: E402
from axis.rejections import CODES  # noqa: E402
from schemas.samples import sample_edoc  # noqa: E402
from signing import Signer, TrustStore, Verifier  # noqa: E402
from signing.pki import (  # noqa: E402
    CertifiedKey,
    cert_pem,
    key_pem,
    load_certificates,
    load_key,
    make_crl,
    make_leaf,
)
from tests.corpus import ACCEPTED, CASES, OWN, QUARANTINED, Case, Probe, shuffled  # noqa: E402
from tests.hub.conftest import Agency, Hub, Message, _start_hub, _stop_hub  # noqa: E402
from tests.hub.stream import Spec, Timings  # noqa: E402

pytestmark = pytest.mark.integration

RATE = int(os.environ.get("AXIS_CORPUS_RATE", "100"))
"""Valid documents per second offered while the corpus runs under load (CI: 100; the
latency target is stated at 300, which ``AXIS_CORPUS_RATE=300`` measures)."""
ROUNDS = int(os.environ.get("AXIS_CORPUS_ROUNDS", "1"))
"""How many times the corpus is replayed (each time in another order) under the stream:
one round takes about 3 s, so a p99 over one round is decided by a dozen documents."""
BASELINE_S = 3.0
"""How long the stream runs alone first: the latency baseline of the same run."""
LATENCY_BOUND_S = 10.0
"""Each valid document must arrive within this. Generous on purpose: the machine (2
cores) also runs the broker, the test's own load and, during development, other
work; a stall or a lost document still fails. The hub's latency target (p99 ≤ 25 ms
at 300 docs/s) is measured by ``axis bench``, and under the corpus by the full mode:
``AXIS_CORPUS_RATE=300 AXIS_CORPUS_ROUNDS=5`` (docs/guarantees.md, section 8)."""
ANSWER_TIMEOUT_S = 30.0


@dataclass
class Outcome:
    """What the hub did with one case: the answer's kind and code, and its audit event."""

    case: Case
    answer: str
    """A rejection code, ``QUARANTINED`` or ``ACCEPTED``."""
    event: str | None
    event_code: str | None
    receipt_id: str | None
    seconds: float


@dataclass
class CorpusWorld:
    """The hub under test, its agencies and certificates (the corpus's ``World``)."""

    hub: Hub
    process: subprocess.Popen
    log: Path
    sender: Agency
    recipient: Agency
    other: Agency
    suspended_sender: Agency
    suspended_recipient: Agency
    load_sender: Agency
    load_recipient: Agency
    sender_rsa: Signer
    registry_revoked: Signer
    crl_revoked: Signer
    ca: CertifiedKey
    hub_signer: Signer
    max_bytes: int
    hub_verifier: Verifier
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def edoc(self, party: Agency, recipients: Sequence[str], **kwargs: object) -> schemas.Edoc:
        """A fresh unsigned edoc: document numbers count up, so DocumentIds never repeat."""
        kwargs.setdefault("document_number", next(self.numbers))
        return sample_edoc(party.code, list(recipients), **kwargs)  # type: ignore[arg-type]

    def accepted(self, party: Agency, recipients: Sequence[str], **kwargs: object) -> schemas.Edoc:
        """A fresh edoc from ``party``, signed and sent; its receipt is awaited."""
        document = self.edoc(party, recipients, **kwargs)
        message_id = self.publish(Probe(party.sign(document), publisher=party))
        answer = self.answer(party, message_id)
        assert answer.type == "receipt", schemas.parse_rejection(answer.body)
        return document

    def publisher(self, probe: Probe) -> Agency:
        """Who publishes ``probe``: its own publisher, or the corpus's sender."""
        return probe.publisher or self.sender  # type: ignore[return-value]

    def publish(self, probe: Probe) -> str | None:
        """Publish ``probe`` to axis.submit as its publisher; return the message id used."""
        agency = self.publisher(probe)
        message_id = str(uuid.uuid4()) if probe.message_id == OWN else probe.message_id
        user_id = agency.code if probe.user_id == OWN else probe.user_id
        agency.channel().basic_publish(
            "axis.submit",
            "",
            probe.body,
            pika.BasicProperties(
                delivery_mode=2,
                content_type=probe.content_type,
                type=probe.type,
                message_id=message_id,
                user_id=user_id,
            ),
            mandatory=True,
        )
        return message_id

    def answer(self, agency: Agency, message_id: str | None) -> Message:
        """The receipt or rejection answering ``message_id`` in ``agency``'s inbox."""
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while time.monotonic() < deadline:
            for message in agency.take(1, timeout=0.5):
                if message.type in ("receipt", "rejection") and (
                    message.correlation_id == message_id
                ):
                    return message
        raise AssertionError(f"no answer to {message_id!r} in {ANSWER_TIMEOUT_S} s{self.tail()}")

    def delivery(self, agency: Agency, message_id: str | None) -> Message:
        """The delivery of ``message_id`` in ``agency``'s inbox (others are skipped)."""
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        while time.monotonic() < deadline:
            for message in agency.take(1, timeout=0.5):
                if message.type in ("edoc", "status") and message.message_id == message_id:
                    return message
        raise AssertionError(f"{message_id!r} was never delivered{self.tail()}")

    def audit_event(self, receipt_id: str) -> tuple[str, str | None]:
        """The (event, code) of the message's own audit event."""
        with self.hub.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT event, code FROM audit_events WHERE receipt_id = :r "
                    "AND event IN ('RECEIVED', 'STATUS', 'REJECTED', 'QUARANTINED')"
                ),
                {"r": receipt_id},
            ).one()
        return row.event, row.code

    def run(self, case: Case) -> Outcome:
        """Build, publish and follow one case to its answer and audit record."""
        started = time.monotonic()
        probe = case.build(self)
        agency = self.publisher(probe)
        message_id = self.publish(probe)
        if case.expect == QUARANTINED:
            receipt_id = self.quarantined(message_id)
            answer = QUARANTINED
        else:
            message = self.answer(agency, message_id)
            receipt_id = message.headers["x-axis-receipt-id"]
            # Every answer is the hub's, signed: an agency can act on it.
            assert self.hub_verifier.verify(message.body, at=datetime.now(UTC)).subject_code
            if message.type == "rejection":
                rejection = schemas.parse_rejection(message.body)
                assert rejection.receipt_id == receipt_id
                answer = rejection.code
            else:
                receipt = schemas.parse_receipt(message.body)
                assert receipt.document_id == probe.document_id, receipt
                delivered = self.delivery(self.recipient, message_id)
                assert delivered.body == probe.body, "the delivery is not the sender's bytes"
                answer = ACCEPTED
        event, code = self.audit_event(receipt_id)
        return Outcome(case, answer, event, code, receipt_id, time.monotonic() - started)

    def quarantined(self, message_id: str | None) -> str:
        """The receipt id of ``message_id`` in axis.quarantine, read as the admin."""
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        with pika.BlockingConnection(pika.URLParameters(self.hub.broker.amqp_url)) as admin:
            channel = admin.channel()
            while time.monotonic() < deadline:
                method, props, _ = channel.basic_get("axis.quarantine", auto_ack=True)
                if method is None:
                    admin.sleep(0.05)
                elif props.message_id == message_id:
                    assert "user_id" in props.headers["x-axis-reason"]
                    return str(props.headers["x-axis-receipt-id"])
        raise AssertionError(f"{message_id} never reached axis.quarantine{self.tail()}")

    def tail(self) -> str:
        """The end of the hub's log, for assertion messages."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n--- axis serve log (tail) ---\n" + "\n".join(text.splitlines()[-15:])


def expected_audit(case: Case) -> tuple[str, str | None]:
    """The audit event each kind of outcome must leave."""
    if case.expect == QUARANTINED:
        return "QUARANTINED", None
    if case.expect == ACCEPTED:
        return "RECEIVED", None
    return "REJECTED", case.expect


def check(outcome: Outcome) -> None:
    """The answer and the audit event are the documented ones."""
    case = outcome.case
    assert outcome.answer == case.expect, f"{case.id}: {case.description}"
    assert (outcome.event, outcome.event_code) == expected_audit(case), case.id


def _serve(config: Path, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from cli import main; main()",
                "--config",
                str(config),
                "serve",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(scope="module")
def corpus(broker: BrokerEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorpusWorld]:
    """One ``axis serve`` with the corpus's agencies, certificates, registry state and CRL."""
    folder = tmp_path_factory.mktemp("corpus-hub")
    hub = _start_hub(broker, folder, f"sqlite:///{folder / 'axis.db'}", start_router=False)
    process = None
    try:
        sender, recipient, other = hub.register("A"), hub.register("B"), hub.register("C")
        suspended_sender, suspended_recipient = hub.register("X"), hub.register("Y")
        load_sender, load_recipient = hub.register("L"), hub.register("R")
        hub.suspend(suspended_sender.code)
        hub.suspend(suspended_recipient.code)
        rsa = make_leaf(sender.code, hub.ca, algo="rsa")
        revoked = make_leaf(sender.code, hub.ca)
        on_crl = make_leaf(sender.code, hub.ca)
        now = datetime.now(UTC)
        with hub.engine.begin() as conn:
            registry.add_certificate(conn, sender.code, rsa.certificate, now)
            registry.add_certificate(conn, sender.code, revoked.certificate, now)
            registry.revoke_certificate(conn, registry.fingerprint(revoked.certificate), now)
        crl = make_crl(hub.ca, [on_crl.certificate.serial_number])
        (folder / "pki" / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
        config = folder / "axis.toml"
        text = config.read_text()
        config.write_text(
            text.replace(
                'anchors = ["pki/ca.pem"]', 'anchors = ["pki/ca.pem"]\ncrls = ["pki/crl.pem"]'
            )
        )
        assert "crls" in config.read_text()
        log = folder / "serve.log"
        process = _serve(config, log)
        hub_certificate = load_certificates(folder / "pki" / "hub.pem")[0]
        world = CorpusWorld(
            hub=hub,
            process=process,
            log=log,
            sender=sender,
            recipient=recipient,
            other=other,
            suspended_sender=suspended_sender,
            suspended_recipient=suspended_recipient,
            load_sender=load_sender,
            load_recipient=load_recipient,
            sender_rsa=Signer(rsa.key, rsa.certificate),
            registry_revoked=Signer(revoked.key, revoked.certificate),
            crl_revoked=Signer(on_crl.key, on_crl.certificate),
            ca=hub.ca,
            hub_signer=Signer(load_key(folder / "pki" / "hub.key"), hub_certificate),
            max_bytes=hub.config.hub.max_message_bytes,
            hub_verifier=Verifier(TrustStore([hub.ca.certificate])),
        )
        world.accepted(sender, [recipient.code])  # the router is up and answering
        yield world
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        _stop_hub(hub)


ISSUE_7_LIST = {
    "malformed and truncated XML": {"unclosed-element", "truncated-half", "truncated-last-byte"},
    "XXE": {"xxe-external-entity", "xxe-parameter-entity", "external-dtd-local-file"},
    "billion laughs": {"billion-laughs", "quadratic-blowup"},
    "very deep nesting": {"deep-nesting", "very-deep-nesting"},
    "wrong namespace": {"wrong-namespace", "no-namespace"},
    "schema violations": {"missing-subject", "priority-out-of-range", "two-signatures"},
    "non-UTF-8 and empty bodies": {"invalid-utf8", "utf16-without-declaration", "empty-body"},
    "an oversized body": {"oversized-document", "oversized-garbage"},
    "signature wrapping": {"wrapped-original-in-object", "signature-transplanted"},
    "XPath/transform tricks": {"xpath-transform", "inclusive-c14n-transform"},
    "stripped signature": {"stripped-signature"},
    "wrong reference URI": {"reference-uri-fragment", "reference-uri-absent"},
    "altered content after signing": {"subject-changed", "recipient-added"},
    "key substitution, KeyInfo with a different cert": {
        "key-substitution",
        "keyinfo-certificate-of-another-agency",
    },
    "weak key": {"weak-rsa-1024", "ec-p384"},
    "wrong algorithm (SHA-1, MD5)": {"sha1-digest", "md5-digest", "rsa-sha1-signature"},
    "HMAC confusion": {"hmac-keyed-with-the-public-key"},
    "comments injection": {"comment-injected", "processing-instruction-injected"},
    "expired, not yet valid": {"cert-expired", "cert-not-yet-valid"},
    "revoked via CRL, in the registry": {"cert-revoked-by-crl", "cert-revoked-in-registry"},
    "unknown CA, wrong keyUsage": {"cert-unknown-ca", "cert-wrong-key-usage"},
    "cert of another agency": {"cert-of-another-agency"},
    "a spoofed From": {"spoofed-from", "replayed-document-of-another-agency"},
    "a missing user_id": {"missing-user-id"},
    "unknown and suspended recipients": {"unknown-recipient", "suspended-recipient"},
    "a DocumentId conflict": {"document-id-conflict"},
    "a revoke of someone else's document": {"revoke-of-another-agencys-document"},
    "a status from a non-recipient": {"status-from-non-recipient"},
}
"""Issue #7's list of bad inputs, item by item, and the corpus cases that cover it."""


def test_the_corpus_covers_every_rejection_code_and_the_issue_list() -> None:
    ids = {c.id for c in CASES}
    for item, cases in ISSUE_7_LIST.items():
        assert cases <= ids, f"{item}: {cases - ids}"
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert set(CODES) <= {c.expect for c in CASES}
    assert {QUARANTINED, ACCEPTED} <= {c.expect for c in CASES}
    for case in CASES:
        assert case.expect in (*CODES, QUARANTINED, ACCEPTED), case.id
        assert case.description, case.id


@pytest.mark.parametrize("case", CASES, ids=str)
def test_each_case_gets_its_documented_answer_and_audit_record(
    corpus: CorpusWorld, case: Case
) -> None:
    check(corpus.run(case))


def test_after_the_corpus_the_same_hub_still_delivers_a_valid_document(
    corpus: CorpusWorld,
) -> None:
    assert corpus.process.poll() is None, corpus.tail()
    document = corpus.accepted(corpus.sender, [corpus.other.code])
    deliveries = [m for m in corpus.other.take(10, timeout=3) if m.type == "edoc"]
    assert document.subject in {schemas.parse_edoc(m.body).subject for m in deliveries}
    with corpus.hub.engine.connect() as conn:
        assert audit.verify(conn).ok


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class ValidStream:
    """``tests/hub/stream.py`` in a process of its own: valid documents from one agency
    to another at a steady rate, timed end to end (and the hub's share)."""

    def __init__(self, world: CorpusWorld, folder: Path, rate: int, minimum: int) -> None:
        sender, recipient = world.load_sender, world.load_recipient
        key_path, certificate_path = folder / "stream-key.pem", folder / "stream-cert.pem"
        key_path.write_bytes(key_pem(sender.signer.key))
        certificate_path.write_bytes(cert_pem(sender.signer.certificate))
        spec = Spec(
            sender=sender.code,
            sender_url=sender.url,
            key_path=str(key_path),
            certificate_path=str(certificate_path),
            recipient=recipient.code,
            recipient_url=recipient.url,
            rate=rate,
            minimum=minimum,
            maximum=int((BASELINE_S + 120 * ROUNDS) * rate),
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.hub.stream"],
            cwd=_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._send(json.dumps(asdict(spec)))

    def _send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def _line(self, timeout: float) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        assert ready, f"the stream said nothing within {timeout:.0f} s"
        line = self.process.stdout.readline()
        assert line, f"the stream ended (exit code {self.process.wait(10)})"
        return line

    def wait_for_baseline(self, timeout: float = 60) -> None:
        assert self._line(timeout).strip() == "baseline"

    def finish(self, timeout: float = 150) -> Timings:
        """Let the stream end; its timings once every document arrived (or 60 s passed).

        The stream waits up to 60 s for its publisher and 60 s for the arrivals."""
        self._send("stop")
        timings = Timings(**json.loads(self._line(timeout)))
        self.process.wait(timeout=10)
        return timings

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def _summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
    }


def test_the_corpus_under_a_valid_stream_loses_and_stalls_no_valid_document(
    corpus: CorpusWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str], record_property
) -> None:
    """The stream runs alone for BASELINE_S (the baseline), then with the corpus replayed
    ROUNDS times, in random order; every valid document must arrive, each within LATENCY_BOUND_S,
    with its receipt. The latencies of both phases are reported, not asserted."""
    stream = ValidStream(corpus, tmp_path, RATE, minimum=int(BASELINE_S * RATE))
    outcomes: list[Outcome] = []
    try:
        stream.wait_for_baseline()
        corpus_started = time.monotonic()  # CLOCK_MONOTONIC: the stream's clock too
        for round_ in range(ROUNDS):
            for case in shuffled(seed=20261120 + round_):
                outcomes.append(corpus.run(case))
        corpus_ended = time.monotonic()
        corpus_seconds = corpus_ended - corpus_started
        timings = stream.finish()
    finally:
        stream.kill()
    assert not timings.errors, timings.errors
    for outcome in outcomes:
        check(outcome)

    sent, arrived = timings.sent, timings.arrived
    # The stream ran until the corpus ended (its cap was not reached first).
    assert max(sent.values()) >= corpus_ended - 1, "the stream stopped before the corpus ended"
    missing = set(sent) - set(arrived)
    assert not missing, f"{len(missing)} of {len(sent)} valid documents never arrived"
    receipts = {m.correlation_id for m in corpus.load_sender.take(len(sent), timeout=30)}
    assert receipts == set(sent), "a valid document got no receipt"
    latency = {m: arrived[m] - sent[m] for m in sent}
    slowest = max(latency.values())
    assert slowest <= LATENCY_BOUND_S, f"slowest valid document: {slowest:.2f} s"
    assert corpus.process.poll() is None, corpus.tail()

    before = {m for m in sent if sent[m] < corpus_started}
    phases = {
        "baseline": _summary([latency[m] for m in before]),
        "corpus": _summary([latency[m] for m in sent if m not in before]),
        "baseline_in_hub": _summary([v for m, v in timings.in_hub.items() if m in before]),
        "corpus_in_hub": _summary([v for m, v in timings.in_hub.items() if m not in before]),
    }
    for phase, figures in phases.items():
        for name, value in figures.items():
            record_property(f"{phase}_{name}", value)
    alone, mixed = phases["baseline"], phases["corpus"]
    hub_alone, hub_mixed = phases["baseline_in_hub"], phases["corpus_in_hub"]
    span = max(sent.values()) - min(sent.values())
    with capsys.disabled():
        print(
            f"\ncorpus under load: {len(outcomes)} hostile cases in {corpus_seconds:.1f} s among "
            f"{len(sent)} valid documents offered at {len(sent) / span:.0f}/s, "
            f"all delivered with receipts. Latency (ms) p50 / p99 / max, end to end "
            f"(in the hub): stream alone {alone['p50_ms']} / {alone['p99_ms']} / "
            f"{alone['max_ms']} ({hub_alone['p50_ms']} / {hub_alone['p99_ms']} / "
            f"{hub_alone['max_ms']}), with the corpus {mixed['p50_ms']} / {mixed['p99_ms']} / "
            f"{mixed['max_ms']} ({hub_mixed['p50_ms']} / {hub_mixed['p99_ms']} / "
            f"{hub_mixed['max_ms']}); p99 ratio {mixed['p99_ms'] / max(alone['p99_ms'], 0.1):.2f}"
        )


def test_nothing_refused_or_quarantined_was_ever_delivered(corpus: CorpusWorld) -> None:
    with corpus.hub.engine.connect() as conn:
        delivered_refusals = conn.execute(
            sa.text(
                "SELECT count(*) FROM deliveries d JOIN audit_events e "
                "ON d.receipt_id = e.receipt_id WHERE e.event IN ('REJECTED', 'QUARANTINED')"
            )
        ).scalar_one()
    assert delivered_refusals == 0
