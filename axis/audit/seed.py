"""Synthetic audit history at scale: years of realistic traffic, for benchmarks and drills.

:func:`seed` fills an empty hub database with the documents, deliveries, statuses,
rejections and revokes/updates/replacements that years of traffic between the
national agencies would leave, and with the audit events recording them, linked
by the real chain (:mod:`axis.audit.chain`), so ``axis audit verify`` passes and
every table agrees with the trail. The history is a simulation, not a replay:

- documents arrive on working days, mostly in office hours (Vietnam time), from
  senders weighted by how much they write (the Government Office most), to one to
  a few agencies, sometimes to ``@provinces`` or ``@ministries``;
- each recipient acknowledges (01) within seconds to hours, then accepts (03),
  assigns (04/05) and completes (06) in office hours, each agency at its own pace,
  so some are reliably late and some documents pass their due date unfinished;
- a few messages are rejected (signature, schema, certificate, recipient...), a
  few documents are revoked, updated or replaced by a later one from their sender.

The simulation runs in the calling process; a loader process (:class:`_Loader`)
takes its events in chunks, computes each event's digest and the chain's links,
and writes the rows, so simulating and hashing-and-writing, about half of the work
each, go on at the same time on two cores. Rows are written in large chunks
(``executemany`` on SQLite, ``COPY`` on PostgreSQL) with the bulk tables' secondary
indexes dropped, then rebuilt once at the end, which is several times faster than
maintaining them row by row. Deterministic for a given ``seed`` and ``end``.
Receipts and archived bodies are not made: the history is the hub's records and
trail, not the messages themselves.
"""

from __future__ import annotations

import heapq
import math
import multiprocessing
import random
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from axis import db, registry
from axis.admin import read_agencies_csv
from axis.audit import store
from axis.audit.chain import GENESIS, canonical_detail, digest_of, link_hash
from axis.models import Agency, AuditEvent, AuditHead, ChainHead, Delivery, Document, Status, table
from axis.receipts import ReceiptWriter
from schemas.samples import SUBJECTS, UNITS, abbreviation

AGENCIES_CSV = Path(__file__).resolve().parent.parent / "data" / "agencies.csv"

_US = 1_000_000
_HOUR = 3600 * _US
_DAY = 24 * _HOUR
_VIETNAM_US = 7 * _HOUR
"""Vietnam's offset: UTC+7, with no daylight saving since 1975."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)

BULK_TABLES = ("audit_events", "documents", "statuses", "deliveries")
"""The tables :func:`seed` fills, whose secondary indexes it drops and rebuilds."""

_EVENT_COLUMNS = store.COLUMNS
_DOCUMENT_COLUMNS = (
    "document_id",
    "receipt_id",
    "message_id",
    "sender",
    "sha256",
    "size",
    "received_at",
    "audit_seq",
    "subject",
    "doc_type",
    "priority",
    "steering_type",
    "due_date",
    "business_type",
    "acts_on",
    "state",
)
_STATUS_COLUMNS = (
    "receipt_id",
    "message_id",
    "document_id",
    "document_sender",
    "sender",
    "code",
    "sha256",
    "stated_at",
    "received_at",
    "audit_seq",
)
_DELIVERY_COLUMNS = ("receipt_id", "recipient", "delivered_at", "acknowledged_at", "completed_at")

_REJECTIONS: tuple[tuple[str, float, str], ...] = (
    ("SIGNATURE_INVALID", 0.30, "the signature value does not verify"),
    ("SCHEMA_INVALID", 0.20, "element 'Subject': this element is not expected"),
    ("CERT_EXPIRED", 0.14, "the signing certificate expired"),
    ("UNKNOWN_RECIPIENT", 0.14, "recipient {code} is not a registered agency"),
    ("DUPLICATE_CONFLICT", 0.10, "a different document with this DocumentId was accepted"),
    ("MALFORMED", 0.05, "not well-formed XML: premature end of data"),
    ("TOO_LARGE", 0.04, "the message exceeds the hub's size limit"),
    ("CERT_REVOKED", 0.03, "the signing certificate is revoked"),
)
_BUSINESS = ((1, "REVOKED", "revoked", 0.4), (2, "UPDATED", "updated", 0.4))
_REPLACE = (3, "REPLACED", "replaced")
_BUSINESS_REASONS = {
    1: "Thu hồi do gửi nhầm nơi nhận",
    2: "Cập nhật thông tin về thời hạn thực hiện",
    3: "Thay thế do sai sót về thể thức văn bản",
}
_PRIORITIES = ((0, 0.85), (1, 0.10), (2, 0.03), (3, 0.015), (4, 0.005))
_PLACES = ("Hà Nội", "Nghệ An", "Đà Nẵng", "Cần Thơ", "Thành phố Hồ Chí Minh", "Quảng Ninh")


class SeedError(Exception):
    """The database cannot be seeded (its audit trail is not empty, or bad options)."""


@dataclass(frozen=True)
class SeedAgency:
    """An agency of the simulated history."""

    code: str
    name: str
    name_en: str
    kind: str


def load_agencies(path: str | Path | None = None) -> list[SeedAgency]:
    """The agencies of an agencies CSV (default: the 95 of ``axis/data/agencies.csv``)."""
    rows = read_agencies_csv(path or AGENCIES_CSV)
    return [SeedAgency(r["code"], r["name"], r["name_en"], r["kind"]) for r in rows]


@dataclass(frozen=True)
class SeedOptions:
    """What history to make."""

    events: int
    """How many audit events: the history stops at this many, or at ``end`` if it comes
    first (the rate of arrivals is steered to reach it just before ``end``)."""
    years: float = 3.0
    """How far back the history starts, before ``end``."""
    end: datetime | None = None
    """About when the history ends (default now); the last events fall a little before."""
    seed: int = 1
    """The random generator's seed: the same seed and end give the same history."""
    chunk: int = 50_000
    """Audit events per write (with the rows they bring)."""


@dataclass
class SeedReport:
    """What :func:`seed` wrote and how long it took."""

    events: int = 0
    documents: int = 0
    statuses: int = 0
    deliveries: int = 0
    rejections: int = 0
    business: int = 0
    """Revokes, updates and replacements (documents acting on an earlier one)."""
    first_at: datetime | None = None
    last_at: datetime | None = None
    last_seq: int = 0
    last_hash: str = GENESIS
    load_seconds: float = 0.0
    """Simulating, hashing and writing the rows."""
    index_seconds: float = 0.0
    """Rebuilding the indexes, marking the revoked/updated/replaced documents, and
    refreshing the planner's statistics."""

    @property
    def seconds(self) -> float:
        """The whole seeding time."""
        return self.load_seconds + self.index_seconds


class _Doc:
    __slots__ = ("document_id", "ended", "receipt_id", "sender")

    def __init__(self, document_id: str, sender: str, receipt_id: str) -> None:
        self.document_id = document_id
        self.sender = sender
        self.receipt_id = receipt_id
        self.ended = False


class _Full(Exception):
    """The history has all the events it was asked for."""


_DELIVER_EDOC, _STATUS, _DELIVER_STATUS, _FOLLOW_UP = range(4)
_DELIVERED_AT, _ACKNOWLEDGED_AT, _COMPLETED_AT = 2, 3, 4
"""Where a delivery row (:data:`_DELIVERY_COLUMNS`) holds each time."""
_FIRST_STATUS_COLUMNS = {"01": _ACKNOWLEDGED_AT, "06": _COMPLETED_AT}
_WEIGHT = (1, 2, 1, 20)
"""Events an action brings: a status is delivered too; a follow-up is a new document."""


def _sql_time(us: int) -> str:
    """How SQLAlchemy stores a UTC time in SQLite (and PostgreSQL reads it in COPY)."""
    return (_NAIVE_EPOCH + timedelta(microseconds=us)).isoformat(" ", "microseconds")


def _wire_time(us: int) -> str:
    """:func:`axis.audit.chain.format_time` of the moment ``us``, without strftime's cost."""
    return (_NAIVE_EPOCH + timedelta(microseconds=us)).isoformat("T", "microseconds") + "Z"


def _local_day(us: int) -> int:
    """Days since 1970-01-01 in Vietnam time."""
    return (us + _VIETNAM_US) // _DAY


class _History:
    """The simulation: documents in time order, and a heap of what happens to them later.

    ``emit`` receives each audit event in chain order and returns its sequence number and
    stored time; the row callbacks receive the documents, statuses and deliveries rows
    as the events that create them are emitted. A document's delivery row waits until
    its recipient's planned 01 and 06 have happened (or will not), since it carries
    their times, and until the rows of earlier documents have gone: they are written
    in the documents' order, as the router inserts them (which keeps a period's rows
    together on disk, as in a real hub). :meth:`unfinished` gives the rows still
    waiting when the history stops.
    """

    def __init__(
        self,
        agencies: Sequence[SeedAgency],
        rng: random.Random,
        emit: Callable[..., tuple[int, str]],
        *,
        limit: int,
        end: int = 2**62,
        on_document: Callable[[tuple[Any, ...]], None] = lambda row: None,
        on_status: Callable[[tuple[Any, ...]], None] = lambda row: None,
        on_delivery: Callable[[tuple[Any, ...]], None] = lambda row: None,
        on_state: Callable[[str, str], None] = lambda document_id, state: None,
    ) -> None:
        if len(agencies) < 3:
            raise SeedError("the history needs at least three agencies")
        self.rng = rng
        self.emit = emit
        self.limit = limit
        self.end = end
        """Nothing happens at or after this moment: it is the future."""
        self.count = 0
        self.on_document = on_document
        self.on_status = on_status
        self.on_delivery = on_delivery
        self.on_state = on_state
        self.codes = [a.code for a in agencies]
        self.provinces = [a.code for a in agencies if a.kind == "province"]
        self.ministries = [a.code for a in agencies if a.kind in ("ministry", "government-agency")]
        weight = {"party": 1.5, "ministry": 1.6, "government-agency": 1.0, "province": 0.8}
        self.sender_weights = [
            12.0 if a.code == "000.00.00.G22" else weight.get(a.kind, 1.0) for a in agencies
        ]
        # Each agency works at its own pace (a delay multiplier) and makes its own share
        # of mistakes, so the overdue list and the rejections name the same few often.
        self.pace = {c: math.exp(rng.gauss(0.0, 0.45)) for c in self.codes}
        self.sloppiness = {c: math.exp(rng.gauss(0.0, 0.8)) for c in self.codes}
        self.numbers: dict[tuple[str, int], int] = {}
        self.heap: list[tuple[int, int, int, Any]] = []
        self.waiting: deque[list[Any]] = deque()
        """Delivery rows not yet written, in the documents' order; each row's last item
        is how many of its events (delivery, 01, 06) have yet to happen."""
        self.filling: dict[tuple[str, str], list[Any]] = {}
        """(receipt id, recipient) → its row in :attr:`waiting`, until it is complete."""
        self.tick = 0
        self.in_flight = 0
        """About how many events the scheduled actions will emit."""

    def _push(self, at: int, action: int, payload: Any) -> None:
        self.tick += 1
        if at < self.end:
            self.in_flight += _WEIGHT[action]
        heapq.heappush(self.heap, (at, self.tick, action, payload))

    def _room(self, events: int) -> None:
        if self.count + events > self.limit:
            raise _Full
        self.count += events

    def _uuid(self) -> str:
        """A random (version 4) UUID from the seeded generator."""
        n = self.rng.getrandbits(128)
        h = f"{n:032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[n & 3]}{h[17:20]}-{h[20:]}"

    def _hex256(self) -> str:
        return f"{self.rng.getrandbits(256):064x}"

    def _office_hours(self, us: int) -> int:
        """``us`` in office hours (Mon–Fri 7:30–17:00 Vietnam), else soon after the next opening."""
        local = us + _VIETNAM_US
        day, in_day = divmod(local, _DAY)
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
        opening, closing = 7 * _HOUR + 30 * 60 * _US, 17 * _HOUR
        if weekday < 5 and opening <= in_day < closing:
            return us
        if not (weekday < 5 and in_day < opening):
            day += 1
            while (day + 3) % 7 >= 5:
                day += 1
        start = day * _DAY + opening - _VIETNAM_US
        return start + int(self.rng.random() * 2 * _HOUR)

    def _lognormal(self, median_us: float, sigma: float) -> int:
        return int(median_us * math.exp(self.rng.gauss(0.0, sigma)))

    def run_until(self, at: int) -> None:
        """Process everything that happens before ``at``."""
        heap = self.heap
        at = min(at, self.end)
        while heap and heap[0][0] < at:
            when, _, action, payload = heapq.heappop(heap)
            self.in_flight -= _WEIGHT[action]
            if action == _DELIVER_EDOC:
                doc, recipient = payload
                self._room(1)
                _, text = self.emit(
                    when, "DELIVERED", doc.receipt_id, doc.document_id, doc.sender, recipient
                )
                self._fill(doc, recipient, _DELIVERED_AT, text)
            elif action == _STATUS:
                self._status(when, *payload)
            elif action == _DELIVER_STATUS:
                doc, by, code, receipt_id = payload
                self._room(1)
                _, text = self.emit(
                    when, "DELIVERED", receipt_id, doc.document_id, by, doc.sender, code
                )
                self.on_delivery((receipt_id, doc.sender, text, None, None))
            else:
                original, recipients, business = payload
                self.document(when, original.sender, recipients, acts_on=(original, business))

    def unfinished(self) -> Iterator[tuple[Any, ...]]:
        """The delivery rows of recorded messages that are still waiting for an event.

        A document's delivery waiting for its 01 or 06, and deliveries whose broker
        confirm had not come yet (``delivered_at`` None).
        """
        for row in self.waiting:
            yield tuple(row[:-1])
        for _, _, action, payload in self.heap:
            if action == _DELIVER_STATUS:
                doc, _by, _code, receipt_id = payload
                yield receipt_id, doc.sender, None, None, None

    def _wait(self, doc: _Doc, recipient: str, events: int) -> None:
        """Hold the delivery row of ``doc`` to ``recipient`` until ``events`` happened."""
        row = [doc.receipt_id, recipient, None, None, None, events]
        self.waiting.append(row)
        self.filling[(doc.receipt_id, recipient)] = row

    def _fill(self, doc: _Doc, recipient: str, column: int, value: str | None) -> None:
        """One awaited event of a delivery happened (``value``, its time) or never will (None)."""
        key = (doc.receipt_id, recipient)
        row = self.filling[key]
        if value is not None:
            row[column] = value
        row[-1] -= 1
        if row[-1] == 0:
            del self.filling[key]
            waiting = self.waiting
            while waiting and waiting[0][-1] == 0:
                self.on_delivery(tuple(waiting.popleft()[:-1]))

    def _status(self, at: int, doc: _Doc, by: str, code: str) -> None:
        column = _FIRST_STATUS_COLUMNS.get(code)
        if doc.ended:
            if column is not None:
                self._fill(doc, by, column, None)
            return  # revoked, updated or replaced: nobody works on it any more
        self._room(1)
        receipt_id, message_id, sha256 = self._uuid(), self._uuid(), self._hex256()
        size = 2800 + int(self.rng.random() * 900)
        stated = at - 200_000 - int(self.rng.random() * 5 * _US)
        # canonical_detail() of these five plain values, written out: statuses are
        # a third of all events (a test checks the two agree).
        detail = (
            f'{{"message_id":"{message_id}","sha256":"{sha256}","size":{size},'
            f'"stated_at":"{_wire_time(stated)}","type":"status"}}'
        )
        seq, text = self.emit(
            at, "STATUS", receipt_id, doc.document_id, by, doc.sender, code, detail=detail
        )
        self.on_status(
            (
                receipt_id,
                message_id,
                doc.document_id,
                doc.sender,
                by,
                code,
                sha256,
                _sql_time(stated),
                text,
                seq,
            )
        )
        if column is not None:
            self._fill(doc, by, column, text)
        self._push(
            at + 8_000 + int(self.rng.random() * 150_000),
            _DELIVER_STATUS,
            (doc, by, code, receipt_id),
        )

    def _recipients(self, sender: str) -> list[str]:
        rng = self.rng
        roll = rng.random()
        group: list[str] | None = None
        if sender == "000.00.00.G22" and roll < 0.12:
            group = self.provinces if rng.random() < 0.7 else self.ministries
        elif roll < 0.012:
            group = self.provinces if rng.random() < 0.5 else self.ministries
        if group:
            members = [c for c in group if c != sender]
            if members:
                return members
        count = 1 if roll < 0.7 else 2 if roll < 0.85 else rng.randint(3, 6)
        chosen: set[str] = set()
        while len(chosen) < count:
            code = rng.choice(self.codes)
            if code != sender:
                chosen.add(code)
        return sorted(chosen)

    def _choose(self, options: Sequence[tuple[Any, float]]) -> Any:
        roll = self.rng.random()
        for value, share in options:
            roll -= share
            if roll < 0:
                return value
        return options[-1][0]

    def _subject(self, received_day: int) -> str:
        rng = self.rng
        subject = rng.choice(SUBJECTS)
        roll = rng.random()
        if roll < 0.25:
            subject += f" tại {rng.choice(_PLACES)}"
        elif roll < 0.4:
            year = (_EPOCH + timedelta(days=received_day)).year
            subject += f" năm {year}"
        return subject

    def reject(self, at: int, sender: str) -> None:
        """A message the hub refused: a REJECTED event and nothing else."""
        self._room(1)
        code, reason = self._choose([((c, r), share) for c, share, r in _REJECTIONS])
        if "{code}" in reason:
            reason = reason.format(code=f"000.00.00.X{self.rng.randrange(10, 99)}")
        message_id, sha256 = self._uuid(), self._hex256()
        document_id = None if code in ("MALFORMED", "TOO_LARGE") else self._document_id(sender, at)
        detail = canonical_detail(
            {
                "message_id": message_id,
                "sha256": sha256,
                "size": self._lognormal(90_000, 1.0) + 4000,
                "reason": reason,
                "type": "edoc",
            }
        )
        self.emit(at, "REJECTED", self._uuid(), document_id, sender, None, code, detail=detail)

    def _document_id(self, sender: str, at: int) -> str:
        local = _EPOCH + timedelta(microseconds=at + _VIETNAM_US)
        key = (sender, local.year)
        number = self.numbers.get(key, 0) + 1
        self.numbers[key] = number
        unit = UNITS[number % len(UNITS)]
        return f"{sender},{local:%Y/%m/%d},{number}/{abbreviation(sender)}-{unit}"

    def arrive(self, at: int) -> None:
        """Something reaches the hub at ``at``: usually a new document, sometimes a rejected one."""
        sender = self.rng.choices(self.codes, self.sender_weights)[0]
        if self.rng.random() < 0.012 * self.sloppiness[sender]:
            self.reject(at, sender)
        else:
            self.document(at, sender, self._recipients(sender))

    def document(
        self,
        at: int,
        sender: str,
        recipients: list[str],
        *,
        acts_on: tuple[_Doc, tuple[int, str, str]] | None = None,
    ) -> None:
        """A new document accepted at ``at``: its RECEIVED event, and its future scheduled."""
        rng = self.rng
        self._room(2 if acts_on else 1)
        receipt_id, message_id, sha256 = self._uuid(), self._uuid(), self._hex256()
        document_id = self._document_id(sender, at)
        size = self._lognormal(150_000, 1.0) + 6000
        detail = canonical_detail(
            {
                "message_id": message_id,
                "recipients": recipients,
                "sha256": sha256,
                "size": size,
                "skipped": [],
                "type": "edoc",
            }
        )
        seq, text = self.emit(
            at, "RECEIVED", receipt_id, document_id, sender, None, None, detail=detail
        )
        business_type, acts_on_id = 0, None
        if acts_on:
            original, (business_type, event, state) = acts_on
            acts_on_id = original.document_id
            reason = _BUSINESS_REASONS[business_type]
            self.emit(
                at,
                event,
                receipt_id,
                original.document_id,
                sender,
                None,
                None,
                detail=canonical_detail({"by": document_id, "reason": reason}),
            )
            original.ended = True
            self.on_state(original.document_id, state)
        day = _local_day(at)
        due: date | None = None
        if not acts_on and rng.random() < 0.35:
            due = date(1970, 1, 1) + timedelta(days=day + rng.randint(5, 30))
        directive = len(recipients) > 6 and sender == "000.00.00.G22"
        self.on_document(
            (
                document_id,
                receipt_id,
                message_id,
                sender,
                sha256,
                size,
                text,
                seq,
                self._subject(day),
                rng.randint(1, 7),
                self._choose(_PRIORITIES),
                2 if directive else 1,
                due.isoformat() if due else None,
                business_type,
                acts_on_id,
                "active",
            )
        )
        doc = _Doc(document_id, sender, receipt_id)
        deadline = None
        if due is not None:
            deadline = (due.toordinal() - date(1970, 1, 1).toordinal() + 1) * _DAY - _VIETNAM_US
        for recipient in recipients:
            delivered = at + 15_000 + int(rng.random() * 250_000)
            self._push(delivered, _DELIVER_EDOC, (doc, recipient))
            firsts = self._plan_statuses(doc, recipient, delivered, deadline)
            self._wait(doc, recipient, 1 + firsts)
        if not acts_on and rng.random() < 0.01:
            business = self._choose(
                [((t, e, s), share) for t, e, s, share in _BUSINESS] + [(_REPLACE, 0.2)]
            )
            later = self._office_hours(at + self._lognormal(1.5 * _DAY, 1.0))
            self._push(later, _FOLLOW_UP, (doc, recipients, business))

    def _plan_statuses(self, doc: _Doc, by: str, delivered: int, deadline: int | None) -> int:
        """When ``by`` will say 01, 03, 04, 05, 06 (or 02) about ``doc``, at its own pace.

        Returns how many of those are a 01 or a 06 (what the delivery row waits for).
        """
        rng, pace = self.rng, self.pace[by]
        if rng.random() < 0.012 * pace:
            return 0  # never acknowledged: the agency's system did not take it in
        at = delivered + 50_000 + self._lognormal(40 * _US * pace, 1.6)
        self._push(at, _STATUS, (doc, by, "01"))
        if rng.random() < 0.008:
            self._push(
                self._office_hours(at + self._lognormal(3 * _HOUR, 1.0)), _STATUS, (doc, by, "02")
            )
            return 1
        if rng.random() < 0.05:
            return 1  # taken in, then nothing more said
        at = self._office_hours(at + self._lognormal(4 * _HOUR * pace, 1.0))
        self._push(at, _STATUS, (doc, by, "03"))
        if rng.random() < 0.3:
            at = self._office_hours(at + self._lognormal(_DAY * pace, 0.8))
            self._push(at, _STATUS, (doc, by, "04"))
        if rng.random() < 0.05:
            return 1  # accepted, never assigned
        at = self._office_hours(at + self._lognormal(_DAY * pace, 0.8))
        self._push(at, _STATUS, (doc, by, "05"))
        if deadline is not None:
            if rng.random() < 0.04 * pace:
                return 1  # never completed: overdue for ever
            planned = delivered + int(
                (deadline - delivered) * math.exp(rng.gauss(math.log(0.6 * pace), 0.5))
            )
            done = self._office_hours(max(planned, at + 10 * 60 * _US))
        else:
            if rng.random() < 0.4:
                return 1
            done = self._office_hours(at + self._lognormal(3 * _DAY * pace, 1.0))
        self._push(done, _STATUS, (doc, by, "06"))
        return 2


def _arrivals(
    rng: random.Random, start: int, per_weekday: Callable[[int], float]
) -> Iterator[tuple[int, bool]]:
    """Arrival times from ``start`` on, each ``(at, True)``, and ``(end of day, False)``.

    Office hours on working days, a trickle otherwise; ``per_weekday(day)`` is the
    mean number of arrivals on a working day, asked each day.
    """
    day = _local_day(start)
    while True:
        weekday = (day + 3) % 7
        rate = per_weekday(day) * (1.0 if weekday < 5 else 0.08 if weekday == 5 else 0.03)
        count = max(0, round(rng.gauss(rate, math.sqrt(rate)))) if rate > 0 else 0
        base = day * _DAY - _VIETNAM_US
        times = []
        for _ in range(count):
            if rng.random() < 0.88:
                offset = 7 * _HOUR + 30 * 60 * _US + rng.randrange(int(9.5 * _HOUR))
            else:
                offset = 6 * _HOUR + rng.randrange(16 * _HOUR)
            times.append(base + offset)
        times.sort()
        for at in times:
            if at >= start:
                yield at, True
        day += 1
        yield day * _DAY - _VIETNAM_US, False


def events_per_document(
    agencies: Sequence[SeedAgency], seed: int = 1, sample: int = 20_000
) -> float:
    """The simulation's mean number of audit events per arrival, measured on a sample."""
    rng = random.Random(seed ^ 0x5EED)
    history = _History(agencies, rng, lambda *a, **k: (0, ""), limit=10**12)
    at = 1_700_000_000 * _US
    for _ in range(sample):
        at += 60 * _US
        history.run_until(at)
        history.arrive(at)
    history.run_until(at + 3650 * _DAY)
    return history.count / sample


_KEYS = (
    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
    "WHERE contype IN ('p', 'u') AND conrelid::regclass::text = ANY(%s) ORDER BY 1, 2"
)
"""PostgreSQL: the bulk tables' primary keys and unique constraints, with their definitions."""


class _Writer:
    """Bulk rows into the four tables, on the dialect's fastest path."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.raw = engine.raw_connection()
        dbapi = self.raw.driver_connection
        assert dbapi is not None
        self.dbapi: Any = dbapi
        self.keys: list[tuple[str, str, str]] = []
        """PostgreSQL's keys dropped for the load: (table, constraint, definition)."""
        if not self.postgres:
            cursor = self.dbapi.cursor()
            # A seeded history is rebuilt if the machine fails half-way: no fsync per chunk.
            cursor.execute("PRAGMA synchronous=OFF")
            # SQLite's keys stay (they cannot be dropped): the cache holds their pages,
            # which random receipt ids touch all over (about 800 MB at 10 million events).
            cursor.execute("PRAGMA cache_size=-1048576")
            cursor.close()

    def indexes(self) -> list[sa.Index]:
        found = []
        for name in BULK_TABLES:
            found += sorted(table_of(name).indexes, key=lambda ix: str(ix.name))
        return found

    def execute(self, sql: str) -> None:
        cursor = self.dbapi.cursor()
        cursor.execute(sql)
        cursor.close()

    def begin(self) -> None:
        if not self.postgres:
            self.execute("BEGIN")

    def commit(self) -> None:
        self.dbapi.commit() if self.postgres else self.execute("COMMIT")

    def write(self, name: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        cursor = self.dbapi.cursor()
        if self.postgres:
            with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            cursor.executemany(f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})", rows)
        cursor.close()

    def drop_indexes(self) -> None:
        self.begin()
        for index in self.indexes():
            self.execute(f"DROP INDEX IF EXISTS {index.name}")
        if self.postgres:
            # The primary keys too: a key of random receipt ids built once from sorted
            # rows costs a fraction of maintaining it row by row.
            cursor = self.dbapi.cursor()
            self.keys = cursor.execute(_KEYS, (list(BULK_TABLES),)).fetchall()
            cursor.close()
            for name, constraint, _ in self.keys:
                self.execute(f"ALTER TABLE {name} DROP CONSTRAINT {constraint}")
        self.commit()

    def create_indexes(self) -> None:
        if self.postgres:
            self.execute("SET maintenance_work_mem = '1GB'")
        else:
            self.execute("PRAGMA threads = 2")  # helper threads for the sorts
        self.begin()
        for name, constraint, definition in self.keys:
            self.execute(f"ALTER TABLE {name} ADD CONSTRAINT {constraint} {definition}")
        self.keys = []
        for index in self.indexes():
            columns = ", ".join(str(c.name) for c in index.columns)
            self.execute(f"CREATE INDEX IF NOT EXISTS {index.name} ON {index.table} ({columns})")
        self.commit()

    def set_states(self, states: list[tuple[str, str]]) -> None:
        """Mark the revoked, updated and replaced documents: (state, document id) pairs."""
        if not states:
            return
        self.begin()
        cursor = self.dbapi.cursor()
        mark = "%s" if self.postgres else "?"
        cursor.executemany(
            f"UPDATE documents SET state = {mark} WHERE document_id = {mark}", states
        )
        cursor.close()
        self.commit()

    def analyze(self) -> None:
        if self.postgres:
            self.dbapi.autocommit = True
            try:
                # VACUUM sets the visibility map, so index-only scans work on the new rows.
                for name in BULK_TABLES:
                    self.execute(f"VACUUM (ANALYZE) {name}")
            finally:
                self.dbapi.autocommit = False
        else:
            self.execute("PRAGMA analysis_limit=1000")
            self.execute("ANALYZE")

    def close(self) -> None:
        if not self.postgres:
            # The connection goes back to the engine's pool: the hub's durability again.
            self.execute("PRAGMA synchronous=FULL")
            self.execute("PRAGMA cache_size=-2000")
            self.execute("PRAGMA threads=0")
        self.raw.close()


@dataclass(frozen=True)
class _Chunk:
    """A stretch of history for the loader: events in chain order, and the rows they made.

    An event is a row of ``audit_events`` (:data:`_EVENT_COLUMNS`) without its hash.
    """

    events: list[tuple[Any, ...]]
    documents: list[tuple[Any, ...]]
    statuses: list[tuple[Any, ...]]
    deliveries: list[tuple[Any, ...]]


class _Load:
    """In the loader process: links each chunk's events into the chain and writes the rows."""

    def __init__(self, url: str) -> None:
        self.engine = db.make_engine(url)
        self.out = _Writer(self.engine)
        self.seq, self.previous = 0, GENESIS

    def write(self, chunk: _Chunk) -> int:
        """Write ``chunk`` in one transaction; the number of events it held."""
        events, previous = [], self.previous
        for seq, at, kind, receipt_id, document_id, sender, recipient, code, detail in chunk.events:
            # format_time of the stored time, rearranged: no datetime per event.
            wire = f"{at[:10]}T{at[11:]}Z"
            event_digest = digest_of(
                seq, wire, kind, receipt_id, document_id, sender, recipient, code, detail
            )
            previous = link_hash(previous, event_digest)
            events.append(
                (seq, at, kind, receipt_id, document_id, sender, recipient, code, detail, previous)
            )
        self.out.begin()
        self.out.write("audit_events", _EVENT_COLUMNS, events)
        self.out.write("documents", _DOCUMENT_COLUMNS, chunk.documents)
        self.out.write("statuses", _STATUS_COLUMNS, chunk.statuses)
        self.out.write("deliveries", _DELIVERY_COLUMNS, chunk.deliveries)
        self.out.commit()
        if events:
            self.seq, self.previous = events[-1][0], previous
        return len(events)

    def close(self) -> tuple[int, str]:
        """Close the connection; the chain's last (seq, hash)."""
        self.out.close()
        self.engine.dispose()
        return self.seq, self.previous


_load: _Load | None = None
"""The loader process's :class:`_Load` (None in any other process)."""


def _start_load(url: str) -> None:
    global _load
    _load = _Load(url)


def _write_chunk(chunk: _Chunk) -> int:
    assert _load is not None
    return _load.write(chunk)


def _finish_load() -> tuple[int, str]:
    assert _load is not None
    return _load.close()


class _Loader:
    """Hashes and writes the history in a process of its own, in chain order.

    The simulation cannot be split (one random generator, one schedule) and takes
    about half the work; the other half (each event's canonical form and SHA-256,
    the chain's links, the rows' writing) happens here meanwhile. One process, not a
    pool: the links are sequential, the writes are, and on two cores the simulation
    has the other one. :meth:`put` waits when the loader is :data:`BACKLOG` chunks
    behind, and raises what the loader raised.
    """

    BACKLOG = 2

    def __init__(self, url: str, progress: Callable[[int], None] | None) -> None:
        # spawn, not fork: the child must not share the caller's database connections.
        self.pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_load,
            initargs=(url,),
        )
        self.queued: deque[Future[int]] = deque()
        self.written = 0
        self.progress = progress

    def put(self, chunk: _Chunk) -> None:
        """Hand ``chunk`` over (the lists must not change afterwards: they are sent later)."""
        while len(self.queued) >= self.BACKLOG:
            self._wait_one()
        self.queued.append(self.pool.submit(_write_chunk, chunk))

    def _wait_one(self) -> None:
        self.written += self.queued.popleft().result()
        if self.progress:
            self.progress(self.written)

    def finish(self) -> tuple[int, str]:
        """Wait for every chunk to be written; the chain's last (seq, hash)."""
        while self.queued:
            self._wait_one()
        return self.pool.submit(_finish_load).result()

    def close(self) -> None:
        """Stop the loader process (a chunk being written is rolled back)."""
        self.pool.shutdown(wait=True, cancel_futures=True)


def table_of(name: str) -> sa.Table:
    """The Core table named ``name`` among the bulk tables."""
    models = {"audit_events": AuditEvent, "documents": Document, "statuses": Status}
    return table(models.get(name, Delivery))


def _url_of(engine: sa.Engine) -> str:
    """The URL another process opens ``engine``'s database with."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise SeedError("seed a database in a file or on a server, not SQLite in memory")
    return url.render_as_string(hide_password=False)


def _check_empty(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        seq, _ = store.head(conn)
        rows = sum(
            conn.execute(sa.select(sa.func.count()).select_from(table_of(name))).scalar_one()
            for name in BULK_TABLES
        )
    if seq or rows:
        raise SeedError(
            "the database already has an audit trail or documents: seed an empty hub database"
        )


def seed(
    engine: sa.Engine,
    options: SeedOptions,
    agencies: Sequence[SeedAgency] | None = None,
    *,
    writer: ReceiptWriter | None = None,
    progress: Callable[[int], None] | None = None,
) -> SeedReport:
    """Fill the empty database of ``engine`` with ``options.events`` events of history.

    Registers the agencies that are missing, and with ``writer`` (the hub's receipt
    writer) signs the final chain head, as the router would. ``progress`` is called
    with the number of events written after each chunk. Raises :class:`SeedError`
    when the database already holds an audit trail, or is SQLite in memory (the
    loader process opens it by its URL). The loader is a spawned process: a script
    that calls this needs the usual ``if __name__ == "__main__":`` guard.
    """
    if options.events < 1:
        raise SeedError("the number of events must be at least 1")
    if options.years <= 0:
        raise SeedError("the history must span some time (years > 0)")
    url = _url_of(engine)
    agencies = list(agencies or load_agencies())
    _check_empty(engine)
    end = options.end or datetime.now(UTC)
    end_us = (end - _EPOCH) // timedelta(microseconds=1)
    start_us = end_us - int(options.years * 365.25 * _DAY)
    rng = random.Random(options.seed)
    per_arrival = events_per_document(
        agencies, options.seed, sample=min(20_000, max(1000, options.events // 50))
    )
    end_day = _local_day(end_us)

    report = SeedReport()
    out = _Writer(engine)
    events: list[tuple[Any, ...]] = []
    documents: list[tuple[Any, ...]] = []
    statuses: list[tuple[Any, ...]] = []
    deliveries: list[tuple[Any, ...]] = []
    states: list[tuple[str, str]] = []
    seq = 0

    def emit(
        at: int,
        kind: str,
        receipt_id: str | None,
        document_id: str | None,
        sender: str | None,
        recipient: str | None = None,
        code: str | None = None,
        *,
        detail: str = "{}",
    ) -> tuple[int, str]:
        nonlocal seq
        seq += 1
        text = _sql_time(at)
        events.append((seq, text, kind, receipt_id, document_id, sender, recipient, code, detail))
        if kind == "REJECTED":
            report.rejections += 1
        return seq, text

    def flush(loader: _Loader) -> None:
        # Copies: the lists are the simulation's, and the chunk is sent later.
        loader.put(_Chunk(events.copy(), documents.copy(), statuses.copy(), deliveries.copy()))
        report.events += len(events)
        report.documents += len(documents)
        report.statuses += len(statuses)
        report.deliveries += len(deliveries)
        for rows in (events, documents, statuses, deliveries):
            rows.clear()

    history = _History(
        agencies,
        rng,
        emit,
        limit=options.events,
        end=end_us,
        on_document=documents.append,
        on_status=statuses.append,
        on_delivery=deliveries.append,
        on_state=lambda document_id, state: states.append((state, document_id)),
    )

    def per_weekday(day: int) -> float:
        # Steered each day by what is left to make, so the history ends near ``end``
        # whatever the sample said (a directive to 63 provinces is 400 events).
        working_days = max(1.0, (end_day - day) * (5 + 0.08 + 0.03) / 7)
        left = options.events - history.count - history.in_flight
        return max(0.0, left / per_arrival / working_days)

    started = time.perf_counter()
    out.drop_indexes()
    loader = _Loader(url, progress)
    try:
        try:
            for at, arrival in _arrivals(rng, start_us, per_weekday):
                if at >= end_us:
                    history.run_until(end_us)
                    break
                history.run_until(at)
                if arrival:
                    history.arrive(at)
                if len(events) >= options.chunk:
                    flush(loader)
        except _Full:
            pass
        deliveries.extend(history.unfinished())
        flush(loader)
        last_seq, last_hash = loader.finish()
        report.load_seconds = time.perf_counter() - started
    finally:
        loader.close()
        started = time.perf_counter()
        out.create_indexes()
    # Once the keys are back: on PostgreSQL each update would scan the documents.
    out.set_states(states)
    out.analyze()
    out.close()
    report.index_seconds = time.perf_counter() - started
    report.business = len(states)
    report.last_seq, report.last_hash = last_seq, last_hash
    with engine.begin() as conn:
        _register(conn, agencies, _EPOCH + timedelta(microseconds=start_us))
        conn.execute(
            table(AuditHead).update().where(AuditHead.id == 1).values(seq=last_seq, hash=last_hash)
        )
        if last_seq:
            first, last = conn.execute(
                sa.select(sa.func.min(AuditEvent.at), sa.func.max(AuditEvent.at))
            ).one()
            report.first_at, report.last_at = first, last
        if writer is not None and last_seq:
            signed_at = datetime.now(UTC)
            body = writer.chain_head(seq=last_seq, chain_hash=last_hash, signed_at=signed_at)
            conn.execute(
                sa.insert(ChainHead).values(
                    seq=last_seq, hash=last_hash, signed_at=signed_at, body=body
                )
            )
    return report


def _register(conn: sa.Connection, agencies: Sequence[SeedAgency], at: datetime) -> None:
    """Register the history's agencies that the registry does not have yet."""
    known = set(conn.execute(sa.select(Agency.code)).scalars())
    rows = [
        {
            "code": a.code,
            "name": a.name,
            "name_en": a.name_en or None,
            "kind": a.kind,
            "state": "active",
            "created_at": at,
            "updated_at": at,
        }
        for a in agencies
        if a.code not in known
    ]
    if rows:
        conn.execute(table(Agency).insert(), rows)
        registry.bump(conn)
