"""The router: consumes ``axis.inbound`` and runs each batch through the pipeline.

    take a batch → pipeline.handle (parse → validate → verify → authorize → record)
                 → publish (deliver) → broker confirms → pipeline.confirm → ack

One process, one pika ``SelectConnection``, one thread: a message is routed at once
while the router is not behind; when it is, messages gather into batches (up to
``batch_size``, until a batch is confirmed or ``batch_wait_ms`` passes). A batch is
decided and recorded in one database transaction, and its deliveries are published
with asynchronous publisher confirms. An inbound message is acknowledged only after
every publish of its batch is confirmed and the confirmation is recorded (with
others', within :data:`CONFIRM_WAIT_S`); a nack, an unroutable delivery or a
lost connection leaves it unacknowledged, so the broker hands it out again and the
pipeline finishes what was left (at-least-once, same receipt id). Database
trouble pauses the router (the prefetch window stops the broker) and it retries.
"""

from __future__ import annotations

import itertools
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions
import sqlalchemy.exc
import structlog
from pika.channel import Channel
from pika.spec import Basic, BasicProperties

from axis.amqp import SelectConnection, parameters
from axis.audit.chain import format_time
from axis.broker.topology import INBOUND_QUEUE, QUARANTINE_QUEUE
from axis.config import Config
from axis.deliver import CLAIMED_USER, REASON, RECEIPT_ID, RECEIVED_AT, Outgoing
from axis.pipeline import Pipeline, utcnow
from axis.record import Inbound, Item

log = structlog.get_logger("axis.router")

RETRY_DELAYS = (0.5, 1, 2, 5, 10)
"""Back-off between attempts after a lost broker or database, in seconds."""
BATCH_MAX_WAIT_S = 0.025
"""The longest a message waits for its batch to fill (the latency target is 25 ms p99)."""
CONFIRM_WAIT_S = 0.05
"""How long confirmed deliveries may wait to be recorded (and their messages acknowledged).

They ride a later batch's transaction: recording them costs a few statements per
transaction, and alone a commit (an fsync). Only the acknowledgement waits, never
a delivery. A quiet hub records them alone (:data:`RECORD_ALONE_AFTER_S`)."""
RECORD_ALONE_AFTER_S = 2 * CONFIRM_WAIT_S
"""When confirmations no batch has taken are recorded alone: a quiet hub's."""
RECORD_CONFIRMED_AT = 64
"""Confirmed messages that a batch records even before :data:`CONFIRM_WAIT_S` is up."""
EAGER_BATCHES_OUT = 1
"""A message is routed at once while at most this many batches await the broker's confirms.

At a few hundred documents/s the router is mostly idle or has one batch out, and
a message need not wait for company; under a backlog two batches are out and the
messages that arrive meanwhile gather into the next batch (routed when a batch is
confirmed, or after ``batch_wait_ms``)."""
STOP_GRACE_S = 30.0
"""How long a stopping router waits for in-flight work before it closes anyway."""


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached or used for now.

    Only this is waited out. Any other database error (a value it refuses, a
    constraint) comes from the data, and would stall the hub if retried forever.
    """
    return isinstance(
        exc,
        sqlalchemy.exc.OperationalError
        | sqlalchemy.exc.InterfaceError
        | sqlalchemy.exc.DisconnectionError
        | sqlalchemy.exc.TimeoutError,
    ) or bool(getattr(exc, "connection_invalidated", False))


@dataclass
class Batch:
    """A batch between publishing and acknowledging."""

    tags: list[int]
    items: list[Item]
    waiting: int
    failed: bool = False
    confirmed: bool = False
    receipt_ids: set[str] = field(default_factory=set)
    confirmed_since: float = 0.0
    """``time.monotonic()`` when the broker confirmed the last of its publishes."""


class Router:
    """Consumes and routes until :meth:`stop` is called (or a signal arrives)."""

    def __init__(self, config: Config, pipeline: Pipeline) -> None:
        self.config = config
        self.pipeline = pipeline
        self.batch_size = config.router.batch_size
        self.batch_wait = config.router.batch_wait_ms / 1000
        self.record_confirmed_at = min(RECORD_CONFIRMED_AT, max(1, config.router.prefetch // 2))
        self._stopping = False
        self._connection: pika.SelectConnection | None = None
        self._reset()

    def _reset(self) -> None:
        self._channel: Channel | None = None
        self._consumer_tag: str | None = None
        self._pending: list[Inbound] = []
        self._timer: object | None = None
        self._batch_started = 0.0
        self._publish_seq = 0
        self._unconfirmed: dict[int, Batch] = {}
        self._batches_out = 0
        """Batches published and not yet wholly confirmed."""
        self._by_receipt: dict[str, Batch] = {}
        self._to_record: list[Batch] = []
        self._confirm_timer_set = False
        self._blocked_until = 0.0
        # What was in flight on a lost connection may never arrive: deliver it again.
        self.pipeline.in_flight.clear()

    def run(self, *, install_signals: bool = True) -> None:
        """Serve until stopped, reconnecting to the broker whenever it goes away."""
        if install_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: self.stop())
        attempt = 0
        while not self._stopping:
            self._reset()
            started = time.monotonic()
            try:
                self._connection = SelectConnection(
                    parameters(self.config.broker, name="axis-router"),
                    on_open_callback=self._on_connection_open,
                    on_open_error_callback=self._on_connection_error,
                    on_close_callback=self._on_connection_closed,
                )
                self._connection.ioloop.start()
            except Exception:
                log.exception("router.loop_failed")
            if self._stopping:
                break
            attempt = 0 if time.monotonic() - started > 30 else attempt + 1
            delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
            log.warning("router.reconnecting", in_s=delay)
            time.sleep(delay)
        log.info("router.stopped")

    def stop(self) -> None:
        """Stop taking messages, finish what is in flight, close and return from :meth:`run`."""
        self._stopping = True
        connection = self._connection
        if connection is not None:
            connection.ioloop.add_callback_threadsafe(self._begin_stop)

    def _begin_stop(self) -> None:
        log.info(
            "router.stopping",
            in_flight=len(self._pending)
            + len(self._unconfirmed)
            + sum(len(b.tags) for b in self._to_record),
        )
        # Whatever cannot finish in time (say, with the database down) stays
        # unacknowledged, and the broker hands it to the next router.
        self._later(STOP_GRACE_S, self._force_close)
        if self._channel is not None and self._channel.is_open and self._consumer_tag:
            self._channel.basic_cancel(self._consumer_tag)
            self._consumer_tag = None
        self._flush()
        self._record_confirmations()  # what is confirmed need not wait for its timer
        self._maybe_close()

    def _force_close(self) -> None:
        self._pending.clear()
        self._unconfirmed.clear()
        self._batches_out = 0
        self._to_record.clear()
        self._maybe_close()

    def _maybe_close(self) -> None:
        if not self._stopping or self._pending or self._unconfirmed or self._to_record:
            return
        if self._connection is not None and self._connection.is_open:
            self._connection.close()
        elif self._connection is not None:
            self._connection.ioloop.stop()

    # Connection and channel set-up.

    def _on_connection_open(self, connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_error(self, connection: pika.SelectConnection, error: Exception) -> None:
        log.warning("router.connect_failed", error=str(error))
        connection.ioloop.stop()

    def _on_connection_closed(self, connection: pika.SelectConnection, reason: Exception) -> None:
        if not self._stopping:
            log.warning("router.connection_lost", reason=str(reason))
        connection.ioloop.stop()

    def _on_channel_open(self, channel: Channel) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(
            self._on_confirm, callback=lambda _frame: self._on_confirm_mode(channel)
        )

    def _on_confirm_mode(self, channel: Channel) -> None:
        channel.basic_qos(
            prefetch_count=self.config.router.prefetch, callback=lambda _f: self._consume(channel)
        )

    def _consume(self, channel: Channel) -> None:
        self._consumer_tag = channel.basic_consume(INBOUND_QUEUE, self._on_message)
        self._later(self.config.router.chain_head_interval_s, self._sign_chain_head)
        log.info("router.consuming", queue=INBOUND_QUEUE, prefetch=self.config.router.prefetch)

    def _on_channel_closed(self, channel: Channel, reason: Exception) -> None:
        if not self._stopping:
            log.warning("router.channel_closed", reason=str(reason))
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    # Taking messages and batching them.

    def _on_message(
        self, channel: Channel, method: Basic.Deliver, props: BasicProperties, body: bytes
    ) -> None:
        self._pending.append(
            Inbound(
                tag=method.delivery_tag,
                body=body,
                user_id=props.user_id,
                message_id=props.message_id,
                type=props.type,
                content_type=props.content_type,
                received_at=utcnow(),
                redelivered=bool(method.redelivered),
            )
        )
        if len(self._pending) >= self.batch_size or self._batches_out <= EAGER_BATCHES_OUT:
            # A full batch, or a router that is not behind: this message need not
            # wait for others. A busy one batches what arrives until a batch of it
            # is confirmed (see _confirmed) or the stream pauses (below).
            self._flush()
        elif self._connection is not None:
            # Flush when the stream pauses for batch_wait, not batch_wait after the
            # first message: messages that queued up while the last batch was being
            # decided arrive back to back, and belong in one batch. BATCH_MAX_WAIT_S
            # caps how long the first of them can wait.
            now = time.monotonic()
            if self._timer is None:
                self._batch_started = now
            else:
                self._connection.ioloop.remove_timeout(self._timer)
            delay = min(self.batch_wait, self._batch_started + BATCH_MAX_WAIT_S - now)
            self._timer = self._connection.ioloop.call_later(max(0.0, delay), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._flush()

    def _later(self, delay: float, callback: Callable[[], None]) -> None:
        if self._connection is not None:
            self._connection.ioloop.call_later(delay, callback)

    def _flush(self) -> None:
        """Handle what is pending, unless the database asked us to wait."""
        if self._timer is not None and self._connection is not None:
            self._connection.ioloop.remove_timeout(self._timer)
            self._timer = None
        if not self._pending or self._channel is None or not self._channel.is_open:
            return
        if time.monotonic() < self._blocked_until:
            return
        batch, self._pending = self._pending, []
        self._route(batch)

    def _route(self, batch: list[Inbound]) -> None:
        confirming = self._due_confirmations()
        try:
            items, outgoing = self.pipeline.handle(
                batch, confirmed=[item for done in confirming for item in done.items]
            )
        except Exception as exc:
            self._to_record = confirming + self._to_record
            if database_unavailable(exc):
                self._pending = batch + self._pending
                self._database_down("record", exc, self._flush)
                return
            # A bug, not bad input (the checks turn bad input into rejections), or
            # data the database refuses (which waiting would not change). Find the
            # message at fault by routing the batch one by one, and set that one
            # aside in the quarantine rather than retry it forever or drop it.
            log.exception("router.batch_failed", messages=len(batch))
            if len(batch) == 1:
                self._set_aside(batch[0])
            else:
                for message in batch:
                    self._route([message])
            return
        for done in confirming:
            self._settle(done, ack=True)
        self._publish(Batch([m.tag for m in batch], items, 0), outgoing)
        self._maybe_close()

    def _due_confirmations(self) -> list[Batch]:
        """The confirmed batches to record in this batch's transaction.

        All of them once :data:`RECORD_CONFIRMED_AT` messages wait (half the prefetch
        window if that is smaller: the broker sends no more than it) or the oldest
        has waited :data:`CONFIRM_WAIT_S`, else none: at one document per batch,
        recording each batch's confirmation with the next cost a fifth of the
        router's time per batch. Under load batches are big and take them every time.
        """
        waiting = sum(len(batch.tags) for batch in self._to_record)
        if not waiting:
            return []
        oldest = self._to_record[0].confirmed_since
        if (
            waiting < self.record_confirmed_at
            and time.monotonic() - oldest < CONFIRM_WAIT_S
            and not self._stopping
        ):
            return []
        taken, self._to_record = self._to_record, []
        return taken

    def _set_aside(self, message: Inbound) -> None:
        receipt_id = str(uuid.uuid4())
        log.error("router.message_set_aside", receipt_id=receipt_id, user_id=message.user_id)
        outgoing = Outgoing(
            "",
            QUARANTINE_QUEUE,
            message.body,
            message.type or "",
            message.message_id,
            {
                RECEIPT_ID: receipt_id,
                REASON: "the hub failed while processing this message; see its log",
                RECEIVED_AT: format_time(message.received_at),
                CLAIMED_USER: message.user_id or "",
            },
            user_id=self.config.broker.user,
        )
        self._publish(Batch([message.tag], [], 0), [outgoing])

    def _database_down(self, step: str, exc: Exception, retry: Callable[[], None]) -> None:
        delay = RETRY_DELAYS[2]
        self._blocked_until = time.monotonic() + delay
        log.error(
            "database.unavailable", step=step, error=str(exc).splitlines()[0], retry_in_s=delay
        )
        self._later(delay, retry)

    # Delivering and confirming.

    def _publish(self, batch: Batch, outgoing: list[Outgoing]) -> None:
        channel = self._channel
        assert channel is not None
        for message in outgoing:
            channel.basic_publish(
                message.exchange,
                message.routing_key,
                message.body,
                BasicProperties(
                    delivery_mode=2,
                    content_type="application/xml",
                    type=message.type,
                    message_id=message.message_id,
                    correlation_id=message.correlation_id,
                    user_id=message.user_id,
                    headers=message.headers,
                ),
                mandatory=True,
            )
            self._publish_seq += 1
            self._unconfirmed[self._publish_seq] = batch
            batch.waiting += 1
            if message.item is not None:
                batch.receipt_ids.add(message.item.receipt_id)
        for receipt_id in batch.receipt_ids:
            self._by_receipt[receipt_id] = batch
        if batch.waiting == 0:
            self._confirmed(batch)
        else:
            self._batches_out += 1

    def _on_return(
        self, channel: Channel, method: Basic.Return, props: BasicProperties, body: bytes
    ) -> None:
        receipt_id = (props.headers or {}).get("x-axis-receipt-id")
        batch = self._by_receipt.get(receipt_id) if receipt_id else None
        log.error(
            "delivery.unroutable",
            routing_key=method.routing_key,
            receipt_id=receipt_id,
            reply=method.reply_text,
        )
        if batch is not None:
            batch.failed = True

    def _on_confirm(self, frame: Any) -> None:
        method = frame.method
        nack = isinstance(method, Basic.Nack)
        if method.multiple:
            # Publish numbers go in ascending, so the ones confirmed are at the front:
            # taken from there, each confirm costs what it settles, not the window.
            tags = list(itertools.takewhile(lambda t: t <= method.delivery_tag, self._unconfirmed))
        else:
            tags = [method.delivery_tag]
        for tag in tags:
            batch = self._unconfirmed.pop(tag, None)
            if batch is None:
                continue
            batch.failed |= nack
            batch.waiting -= 1
            if batch.waiting == 0:
                self._batches_out -= 1
                self._confirmed(batch)

    def _confirmed(self, batch: Batch) -> None:
        for receipt_id in batch.receipt_ids:
            self._by_receipt.pop(receipt_id, None)
        if batch.failed:
            log.warning("batch.redo", messages=len(batch.tags))
            self.pipeline.in_flight.difference_update(item.receipt_id for item in batch.items)
            self._settle(batch, ack=False)
            self._maybe_close()
            return
        confirmed_at = utcnow()
        for item in batch.items:
            item.confirmed_at = confirmed_at
        batch.confirmed_since = time.monotonic()
        self._to_record.append(batch)
        if self._pending:
            self._flush()  # messages that gathered while this batch was unconfirmed
        if self._to_record and not self._confirm_timer_set:
            # Record them with a later batch, or alone if none comes in time.
            self._confirm_timer_set = True
            self._later(RECORD_ALONE_AFTER_S, self._on_confirm_timer)

    def _on_confirm_timer(self) -> None:
        self._confirm_timer_set = False
        if not self._to_record:
            return
        # A batch took the older ones meanwhile: wait for the oldest left.
        wait = self._to_record[0].confirmed_since + RECORD_ALONE_AFTER_S - time.monotonic()
        if wait > 0:
            self._confirm_timer_set = True
            self._later(wait, self._on_confirm_timer)
            return
        self._record_confirmations()

    def _record_confirmations(self) -> None:
        batches, self._to_record = self._to_record, []
        if not batches:
            if self._pending:
                self._flush()  # messages a database retry held back
            return
        try:
            self.pipeline.confirm([item for batch in batches for item in batch.items])
        except Exception as exc:
            # The deliveries are done; only their record is missing. Keep the
            # messages unacknowledged and retry: the record must come first.
            if not isinstance(exc, sqlalchemy.exc.SQLAlchemyError):
                log.exception("router.confirm_failed")
            self._to_record = batches + self._to_record
            self._database_down("confirm", exc, self._record_confirmations)
            return
        for batch in batches:
            self._settle(batch, ack=True)
        if self._pending:
            self._flush()
        self._maybe_close()

    def _settle(self, batch: Batch, *, ack: bool) -> None:
        channel = self._channel
        if channel is None or not channel.is_open:
            return  # the broker requeues what the closed channel held
        for tag in batch.tags:
            if ack:
                channel.basic_ack(tag)
            else:
                channel.basic_nack(tag, requeue=True)

    # Signed chain heads, on their own clock.

    def _sign_chain_head(self) -> None:
        try:
            self.pipeline.sign_chain_head()
        except sqlalchemy.exc.SQLAlchemyError as exc:
            log.warning("audit.head_failed", error=str(exc).splitlines()[0])
        if not self._stopping:
            self._later(self.config.router.chain_head_interval_s, self._sign_chain_head)
