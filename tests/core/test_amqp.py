"""axis.amqp.SelectConnection: a message's frames leave in one write."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pika
from pika.spec import Basic, BasicProperties

from axis import router as router_module
from axis.amqp import JOIN_UP_TO, SelectConnection
from axis.config import Config


def unconnected() -> tuple[SelectConnection, list[bytes]]:
    """A connection that never opened a socket, its writes recorded."""
    connection = object.__new__(SelectConnection)
    writes: list[bytes] = []
    connection.bytes_sent = connection.frames_sent = 0
    connection.connection_state = pika.connection.Connection.CONNECTION_OPEN
    connection._body_max_length = 4096 - 8  # a small frame_max: a body of several frames
    connection._adapter_emit_data = writes.append  # type: ignore[method-assign]
    return connection, writes


def test_a_publish_is_one_write_of_all_its_frames() -> None:
    connection, writes = unconnected()
    body = b"x" * 10_000
    connection._send_message(
        1, Basic.Publish(exchange="", routing_key="q"), (BasicProperties(type="edoc"), body)
    )
    # pika still hands every frame of a message to the method overridden here.
    assert "_output_marshaled_frames" in vars(pika.connection.Connection)
    assert len(writes) == 1 and connection.frames_sent == 5  # method, header, 3 bodies
    assert connection.bytes_sent == len(writes[0])
    frames, data = [], writes[0]
    while data:
        used, frame = pika.frame.decode_frame(data)
        frames.append(frame)
        data = data[used:]
    assert [type(f).__name__ for f in frames] == ["Method", "Header", "Body", "Body", "Body"]
    assert b"".join(f.fragment for f in frames[2:]) == body


def test_a_lone_frame_is_written_as_it_is() -> None:
    connection, writes = unconnected()
    connection._send_method(1, Basic.Ack(delivery_tag=7))
    assert len(writes) == 1 and connection.frames_sent == 1
    assert writes[0] == pika.frame.Method(1, Basic.Ack(delivery_tag=7)).marshal()


def test_a_message_above_the_limit_goes_frame_by_frame() -> None:
    # A partial send copies what is left of a write: megabytes are not joined.
    connection, writes = unconnected()
    body = b"x" * (JOIN_UP_TO + 1)
    connection._send_message(
        1, Basic.Publish(exchange="", routing_key="q"), (BasicProperties(), body)
    )
    assert len(writes) == connection.frames_sent == 2 + -(-len(body) // 4088)
    assert connection.bytes_sent == sum(map(len, writes))


def test_the_router_connects_with_this_connection(monkeypatch) -> None:
    made: list[str] = []
    router = router_module.Router(Config(), SimpleNamespace(in_flight=set()))  # type: ignore[arg-type]

    def connecting(kind: str) -> Callable[..., None]:
        def connect(*args: object, **kwargs: object) -> None:
            made.append(kind)
            router._stopping = True  # one attempt is enough
            raise ConnectionError("no broker in this test")

        return connect

    monkeypatch.setattr(pika.SelectConnection, "__init__", connecting("pika"))
    monkeypatch.setattr(SelectConnection, "__init__", connecting("axis"))
    router.run(install_signals=False)
    assert made == ["axis"]
