"""axis.router without a broker: which database errors are waited out, how batches form."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import sqlalchemy.exc
from pika.spec import Basic, BasicProperties

from axis import router as router_module
from axis.config import Config
from axis.deliver import Outgoing
from axis.record import Inbound
from axis.router import Router, database_unavailable


def test_an_outage_is_waited_out() -> None:
    lost = sqlalchemy.exc.OperationalError("SELECT 1", {}, ConnectionError("server closed"))
    assert database_unavailable(lost)
    assert database_unavailable(sqlalchemy.exc.TimeoutError("pool exhausted"))


def test_data_the_database_refuses_is_not_an_outage() -> None:
    assert not database_unavailable(sqlalchemy.exc.DataError("INSERT", {}, ValueError()))
    assert not database_unavailable(sqlalchemy.exc.IntegrityError("INSERT", {}, ValueError()))
    assert not database_unavailable(RuntimeError("a bug"))


class FakeIOLoop:
    """Timers are kept, not run: the test fires them."""

    def __init__(self) -> None:
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def call_later(self, delay: float, callback: Callable[[], None]) -> object:
        self.timers.append((delay, callback))
        return callback

    def remove_timeout(self, timer: object) -> None:
        self.timers = [t for t in self.timers if t[1] is not timer]

    def stop(self) -> None:
        self.timers.clear()


class FakeChannel:
    is_open = True

    def __init__(self) -> None:
        self.published: list[str] = []
        self.acked: list[int] = []
        self.nacked: list[int] = []

    def basic_publish(self, exchange: str, routing_key: str, body: bytes, *args, **kw) -> None:
        self.published.append(routing_key)

    def basic_ack(self, tag: int) -> None:
        self.acked.append(tag)

    def basic_nack(self, tag: int, requeue: bool) -> None:
        self.nacked.append(tag)


class OneDeliveryEach:
    """A pipeline that delivers every message to one inbox, and notes its batches."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.recorded: list[list[int]] = []
        """The messages whose confirmations each transaction recorded."""
        self.in_flight: set[str] = set()

    def handle(self, batch: list[Inbound], *, confirmed=()) -> tuple[list, list[Outgoing]]:
        self.batches.append([m.tag for m in batch])
        if confirmed:
            self.recorded.append([item.tag for item in confirmed])
        out = [Outgoing("axis.deliver", "axis.inbox.X", m.body, "edoc", "m") for m in batch]
        return [SimpleNamespace(tag=m.tag, receipt_id=str(m.tag)) for m in batch], out

    def confirm(self, items: list[SimpleNamespace]) -> None:
        self.recorded.append([item.tag for item in items])


def deliver(router: Router, tag: int) -> None:
    router._on_message(
        router._channel,  # type: ignore[arg-type]
        Basic.Deliver(delivery_tag=tag),
        BasicProperties(message_id=str(tag), type="edoc", user_id="A"),
        b"<edXML/>",
    )


def confirm_all(router: Router) -> None:
    """The broker confirms every publish so far."""
    last = router._publish_seq
    router._on_confirm(SimpleNamespace(method=Basic.Ack(delivery_tag=last, multiple=True)))


def idle_router() -> tuple[Router, OneDeliveryEach, FakeIOLoop, FakeChannel]:
    pipeline = OneDeliveryEach()
    router = Router(Config(), pipeline)  # type: ignore[arg-type]
    loop, channel = FakeIOLoop(), FakeChannel()
    router._connection = SimpleNamespace(ioloop=loop)  # type: ignore[assignment]
    router._channel = channel  # type: ignore[assignment]
    return router, pipeline, loop, channel


def test_a_router_not_behind_routes_at_once_and_one_behind_batches_until_confirmed() -> None:
    router, pipeline, loop, _ = idle_router()

    deliver(router, 1)  # nothing out: no waiting for company
    deliver(router, 2)  # one batch out: still at once
    assert pipeline.batches == [[1], [2]] and not loop.timers
    deliver(router, 3)  # two out: the router is behind, these gather
    deliver(router, 4)
    assert pipeline.batches == [[1], [2]] and loop.timers
    confirm_all(router)  # confirmed: the gathered ones go as one batch
    assert pipeline.batches == [[1], [2], [3, 4]]
    confirm_all(router)
    deliver(router, 5)
    assert pipeline.batches == [[1], [2], [3, 4], [5]]


def test_confirmations_wait_to_ride_a_later_batch_and_a_quiet_hub_records_them_alone(
    monkeypatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr("axis.router.time.monotonic", lambda: now[0])
    router, pipeline, loop, channel = idle_router()
    deliver(router, 1)
    confirm_all(router)
    # One confirmed message is not worth a batch's statements yet: no ack either.
    deliver(router, 2)
    assert pipeline.batches == [[1], [2]] and pipeline.recorded == [] and channel.acked == []
    confirm_all(router)
    now[0] += router_module.CONFIRM_WAIT_S + 0.001
    deliver(router, 3)  # the oldest has waited long enough: this batch records both
    assert pipeline.recorded == [[1, 2]] and channel.acked == [1, 2]
    confirm_all(router)
    # Nothing more comes: the timer records the last one alone.
    loop.timers.clear()
    now[0] += router_module.RECORD_ALONE_AFTER_S + 0.001
    router._confirm_timer_set = False
    router._on_confirm_timer()
    assert pipeline.recorded == [[1, 2], [3]] and channel.acked == [1, 2, 3]


def test_many_confirmations_ride_the_next_batch_at_once(monkeypatch) -> None:
    monkeypatch.setattr("axis.router.time.monotonic", lambda: 1000.0)
    router, pipeline, _, channel = idle_router()
    tags = range(1, router_module.RECORD_CONFIRMED_AT + 1)
    deliver(router, 0)
    for tag in tags:  # all but the first two gather while two batches are out
        deliver(router, tag)
    confirm_all(router)  # batch 0: the gathered ones go as one batch
    confirm_all(router)  # and they are confirmed too
    assert pipeline.recorded == [] and channel.acked == []
    deliver(router, 1000)
    assert pipeline.recorded == [[0, *tags]]
    assert channel.acked == [0, *tags]


def test_a_stopping_router_acknowledges_every_recorded_message_before_it_closes() -> None:
    router, pipeline, loop, channel = idle_router()
    closed: list[bool] = []

    def close() -> None:
        closed.append(True)
        channel.is_open = connection.is_open = False

    connection = SimpleNamespace(ioloop=loop, is_open=True, close=close)
    router._connection = connection  # type: ignore[assignment]
    for tag in (1, 2, 3):
        deliver(router, tag)
        confirm_all(router)
    assert channel.acked == []  # confirmed, waiting to be recorded together
    router._stopping = True
    router._begin_stop()
    assert pipeline.recorded == [[1, 2, 3]]
    assert channel.acked == [1, 2, 3] and closed == [True]


def test_a_multiple_confirm_settles_the_publishes_up_to_its_tag_and_no_further() -> None:
    router, pipeline, _, channel = idle_router()
    deliver(router, 1)  # publish 1
    deliver(router, 2)  # publish 2
    deliver(router, 3)  # behind: gathers
    assert pipeline.batches == [[1], [2]]
    # The broker confirms publish 2 alone first, then up to 1 with multiple.
    router._on_confirm(SimpleNamespace(method=Basic.Ack(delivery_tag=2, multiple=False)))
    assert pipeline.batches == [[1], [2], [3]]  # a batch is confirmed: 3 goes
    assert list(router._unconfirmed) == [1, 3]
    router._on_confirm(SimpleNamespace(method=Basic.Ack(delivery_tag=1, multiple=True)))
    assert list(router._unconfirmed) == [3]
    assert [len(b.tags) for b in router._to_record] == [1, 1]
    router._on_confirm(SimpleNamespace(method=Basic.Nack(delivery_tag=3, multiple=True)))
    assert router._unconfirmed == {} and router._batches_out == 0
    assert channel.nacked == [3]  # refused: the broker hands it out again
