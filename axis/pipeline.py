"""The route a batch of documents takes through the hub, minus the broker.

    parse → validate → verify → authorize → record → (deliver → confirm → ack)

:meth:`Pipeline.handle` runs the first five steps for a whole batch and returns the
messages to publish; the router publishes them with asynchronous confirms and,
once the broker has confirmed all of a batch, calls :meth:`Pipeline.confirm`
before acknowledging. Each step is a call into the module named for it; the
database sees one transaction per batch for recording and one for confirming.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from lxml import etree
from sqlalchemy.engine import Engine

import schemas
from axis import authorize, record, registry
from axis.archive import Archive, sha256_hex
from axis.audit import store as audit
from axis.audit.chain import Event
from axis.authorize import AcceptEdoc, AcceptStatus, Known, Retry, Unattributable
from axis.deliver import Outgoing, plan
from axis.receipts import ReceiptWriter
from axis.record import Inbound, Item
from axis.rejections import Malformed, Rejection, SchemaInvalid
from schemas.xml import parse
from signing import VerifiedSignature, Verifier

log = structlog.get_logger("axis.router")

HEAD_EVERY_EVENTS = 10_000
"""Sign the chain head at least this often, so evidence bundles stay small."""


def _readable_id(message_id: str | None) -> str | None:
    """The sender's message id, if it is one a receipt can carry."""
    return message_id if message_id and schemas.is_message_id(message_id) else None


def utcnow() -> datetime:
    """The hub's clock."""
    return datetime.now(UTC)


@dataclass
class Checked:
    """A message after parse → validate → verify: either facts to authorize, or a refusal."""

    inbound: Inbound
    sha256: str
    sender: str | None = None
    document: schemas.EdocHeader | schemas.Status | None = None
    signer: VerifiedSignature | None = None
    failure: Rejection | Unattributable | None = None

    @property
    def document_id(self) -> str | None:
        """The DocumentId the message is about, when it could be read."""
        return None if self.document is None else self.document.document_id


class RegistryCache:
    """The registry snapshot, re-read when its version changes (checked at most every ``ttl`` s)."""

    def __init__(self, ttl: float = 0.5) -> None:
        self.ttl = ttl
        self.snapshot = registry.Snapshot(version=-1)
        self._checked = 0.0

    def current(self, engine: Engine) -> registry.Snapshot:
        """The snapshot to decide a batch with."""
        now = time.monotonic()
        if now - self._checked >= self.ttl:
            with engine.connect() as conn:
                if registry.version(conn) != self.snapshot.version:
                    self.snapshot = registry.load_snapshot(conn)
                conn.rollback()
            self._checked = now
        return self.snapshot


class Pipeline:
    """Decides, records and answers batches of inbound messages."""

    def __init__(
        self,
        *,
        engine: Engine,
        archive: Archive,
        verifier: Verifier,
        writer: ReceiptWriter,
        hub_user: str,
        max_bytes: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.archive = archive
        self.verifier = verifier
        self.writer = writer
        self.hub_user = hub_user
        self.max_bytes = max_bytes
        self.clock = clock
        self.registry = RegistryCache()
        self._last_head_seq: int | None = None
        self.in_flight: set[str] = set()
        """Receipt ids published by this router whose confirmation is not yet recorded.

        A retry of one of them is answered with its receipt and delivers nothing: the
        original's deliveries are on their way. The router clears the set when its
        connection drops and releases a batch the broker refused, so that a redo
        after either still delivers."""

    def handle(
        self, batch: Sequence[Inbound], *, confirmed: Sequence[Item] = ()
    ) -> tuple[list[Item], list[Outgoing]]:
        """parse → validate → verify → authorize → record a batch; return what to publish.

        ``confirmed`` are items of earlier batches whose publishes the broker has
        confirmed: their record goes into this batch's transaction, so a busy hub
        commits once per batch (see :meth:`confirm` for a quiet one).
        """
        snapshot = self.registry.current(self.engine)
        digests = [sha256_hex(message.body) for message in batch]
        # The bodies reach the disk while the batch is checked; the transaction that
        # indexes them starts after that (``synced``), so no lock waits for the disk.
        archived, synced = self.archive.write(
            (digest, message.body)
            for digest, message in zip(digests, batch, strict=True)
            if len(message.body) <= self.max_bytes
        )
        checked = [
            self.check(message, snapshot, digest)
            for digest, message in zip(digests, batch, strict=True)
        ]
        synced.result()
        with self.engine.begin() as conn:
            # The chain's head is locked before any row (record.py says why), and the
            # earlier batches' DELIVERED events are chained with this batch's own.
            head = audit.lock_head(conn)
            delivered: list[Event] = []
            if confirmed:
                record.confirm(conn, confirmed, self.clock(), head=head, events_to=delivered)
                self.in_flight.difference_update(item.receipt_id for item in confirmed)
            known = record.lookup(conn, *self._references(checked))
            items = [self.authorize(c, snapshot, known) for c in checked]
            if any(isinstance(i.outcome, Rejection) and i.inbound.redelivered for i in items):
                record.refused_before(conn, items, self.clock())
            seq = record.write(conn, items, archived, delivered=delivered, head=head)
            retries = [i.receipt_id for i in items if isinstance(i.outcome, Retry)]
            stored = record.stored_receipts(conn, retries) if retries else {}
        if seq is not None:
            self._head_moved(seq)
        self.answer(items, stored)
        outgoing = plan(items, hub_user=self.hub_user)
        # Only now are the deliveries on their way: a batch that failed before this
        # point is routed again, and its recorded documents must then be delivered.
        self.in_flight.update(item.receipt_id for item in items if item.deliveries)
        self._log(items)
        return items, outgoing

    def check(
        self, message: Inbound, snapshot: registry.Snapshot, sha256: str | None = None
    ) -> Checked:
        """parse → validate → verify one message, without I/O. Never raises.

        ``sha256`` is the body's digest when the caller has it already.
        """
        checked = Checked(message, sha256 or sha256_hex(message.body))
        try:
            sender = authorize.attribute(message.user_id, snapshot)
            checked.sender = sender.code
            authorize.check_active(sender)
            if not message.message_id or not schemas.is_message_id(message.message_id):
                raise Malformed(
                    "the message_id property is missing or unusable (PROTOCOL 3: a fresh UUID)"
                )
            if message.content_type not in (None, "application/xml", "text/xml"):
                raise Malformed(
                    f"content_type must be application/xml, not {message.content_type!r}"
                )
            root = parse(message.body, max_bytes=self.max_bytes)
            kind = schemas.validate(root)
            if kind not in ("edoc", "status") or kind != message.type:
                raise SchemaInvalid(
                    f"the message type is {message.type!r} but its body is a {kind}"
                )
            checked.document = self._read(root, kind)
            checked.signer = self.verifier.verify(root, at=message.received_at)
        except (Rejection, Unattributable) as exc:
            checked.failure = exc
        except Exception as exc:  # a bug must not stop the hub nor loop on one message
            log.exception("router.internal_error", sha256=checked.sha256)
            checked.failure = Malformed(
                f"the hub could not process this message ({type(exc).__name__})"
            )
        return checked

    def authorize(self, c: Checked, snapshot: registry.Snapshot, known: Known) -> Item:
        """Decide one checked message; ``known`` learns what it accepts, for later ones."""
        item = Item(
            c.inbound,
            c.sha256,
            str(uuid.uuid4()),
            Malformed("unreachable"),
            c.sender,
            c.document_id,
        )
        if c.failure is not None:
            item.outcome = c.failure
            return item
        assert c.signer is not None and c.sender is not None
        item.signature_profile = str(c.signer.profile)
        try:
            if isinstance(c.document, schemas.Status):
                item.outcome = authorize.authorize_status(
                    c.document, c.signer, c.sender, c.sha256, snapshot, known
                )
            else:
                assert isinstance(c.document, schemas.EdocHeader)
                item.outcome = authorize.authorize_edoc(
                    c.document, c.signer, c.sender, c.sha256, snapshot, known
                )
        except Rejection as exc:
            item.outcome = exc
        outcome = item.outcome
        if isinstance(outcome, Retry):
            item.receipt_id = outcome.receipt_id
            in_flight = outcome.receipt_id in self.in_flight
            item.deliveries = () if in_flight else outcome.redeliver
            item.first_received_at = outcome.received_at
        elif isinstance(outcome, AcceptEdoc):
            item.deliveries = outcome.recipients
            known.add(
                authorize.KnownDocument(
                    outcome.header.document_id,
                    c.sender,
                    c.sha256,
                    item.receipt_id,
                    outcome.recipients,
                    (),
                    c.inbound.received_at,
                    outcome.header.business_type,
                )
            )
        elif isinstance(outcome, AcceptStatus):
            item.deliveries = (outcome.addressee,)
            known.statuses[(c.sender, c.sha256)] = authorize.KnownStatus(
                item.receipt_id,
                outcome.status.document_id,
                c.sender,
                outcome.addressee,
                (),
                c.inbound.received_at,
            )
        return item

    def answer(self, items: Sequence[Item], stored: dict[str, bytes]) -> None:
        """Sign a receipt or rejection for every item that has someone to answer."""
        for item in items:
            outcome, link = item.outcome, item.link
            if isinstance(outcome, Retry):
                item.receipt = stored.get(item.receipt_id) or self._rebuild_receipt(item.receipt_id)
            elif isinstance(outcome, AcceptEdoc | AcceptStatus) and link is not None:
                item.receipt = self.writer.receipt(
                    receipt_id=item.receipt_id,
                    message_id=item.inbound.message_id or "",
                    kind="edoc" if isinstance(outcome, AcceptEdoc) else "status",
                    sender=item.sender or "",
                    document_id=item.document_id,
                    sha256=item.sha256,
                    received_at=item.inbound.received_at,
                    audit_seq=link.seq,
                    chain_hash=link.hash,
                    delivered=item.deliveries,
                    skipped=outcome.skipped if isinstance(outcome, AcceptEdoc) else (),
                    signature_profile=item.signature_profile,
                )
            elif isinstance(outcome, Rejection) and item.sender and link is not None:
                item.receipt = self.writer.rejection(
                    receipt_id=item.receipt_id,
                    code=outcome.code,
                    reason=outcome.reason,
                    rejected_at=item.received_at,
                    audit_seq=link.seq,
                    chain_hash=link.hash,
                    message_id=_readable_id(item.inbound.message_id),
                    document_id=item.document_id,
                    sender=item.sender,
                )

    def confirm(self, items: Sequence[Item]) -> None:
        """The broker confirmed every publish of ``items``: record it before the router acks."""
        with self.engine.begin() as conn:
            # The head first, as every writer (record.py): this may store receipts only.
            record.confirm(conn, items, self.clock(), head=audit.lock_head(conn))
        # The DELIVERED events count towards the next signed head: the next batch
        # checks the chain's length (and a quiet hub signs on its clock).
        self.in_flight.difference_update(item.receipt_id for item in items)

    def _head_moved(self, seq: int) -> None:
        if self._last_head_seq is None or seq - self._last_head_seq >= HEAD_EVERY_EVENTS:
            self.sign_chain_head()

    def sign_chain_head(self) -> int | None:
        """Sign the audit chain's head if it moved since the last signed head; return its seq."""
        with self.engine.begin() as conn:
            seq = audit.sign_head(conn, self.writer, self.clock())
            self._last_head_seq = seq if seq is not None else audit.head(conn)[0]
        if seq is not None:
            log.info("audit.head_signed", seq=seq)
        return seq

    def _read(self, root: etree._Element, kind: str) -> schemas.EdocHeader | schemas.Status:
        if kind == "status":
            return schemas.parse_status(root, check_schema=False)
        return schemas.read_header(root)

    @staticmethod
    def _references(checked: Sequence[Checked]) -> tuple[set[str], set[tuple[str, str]]]:
        ids = authorize.referenced_documents(
            c.document for c in checked if c.failure is None and c.document
        )
        statuses = {
            (c.sender, c.sha256)
            for c in checked
            if c.failure is None and c.sender and isinstance(c.document, schemas.Status)
        }
        return ids, statuses

    def _rebuild_receipt(self, receipt_id: str) -> bytes | None:
        """Re-issue a receipt lost to a crash between recording and confirming (rare)."""
        with self.engine.connect() as conn:
            return record.rebuild_receipt(conn, receipt_id, self.writer)

    @staticmethod
    def _log(items: Sequence[Item]) -> None:
        # One info line per batch; a line per accepted document is debug (about a
        # tenth of the router's time per document at info). Refusals keep theirs:
        # each is an answer an operator may be asked about.
        counts: dict[str, int] = {}
        for item in items:
            kind = type(item.outcome).__name__
            counts[kind] = counts.get(kind, 0) + 1
        log.info(
            "batch.decided",
            messages=len(items),
            accepted=counts.get("AcceptEdoc", 0),
            statuses=counts.get("AcceptStatus", 0),
            retries=counts.get("Retry", 0),
            refused=len(items)
            - sum(counts.get(k, 0) for k in ("AcceptEdoc", "AcceptStatus", "Retry")),
        )
        for item in items:
            outcome = item.outcome
            common = {
                "receipt_id": item.receipt_id,
                "document_id": item.document_id,
                "sender": item.sender,
            }
            if isinstance(outcome, AcceptEdoc):
                log.debug("document.accepted", recipients=len(outcome.recipients), **common)
            elif isinstance(outcome, AcceptStatus):
                log.debug("status.accepted", code=str(outcome.status.code), **common)
            elif isinstance(outcome, Retry):
                log.info("document.retry", redeliver=len(outcome.redeliver), **common)
            elif isinstance(outcome, Rejection):
                log.info(
                    "document.rejected",
                    code=outcome.code,
                    reason=outcome.reason,
                    again=item.refused_before,
                    **common,
                )
            else:
                log.warning(
                    "document.quarantined", reason=outcome.reason, user_id=item.inbound.user_id
                )
