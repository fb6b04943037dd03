"""Publishing through pika's SelectConnection against axis.amqp's: CPU per message.

The router publishes each document's delivery and receipt with asynchronous
confirms. This publishes ``--messages`` bodies of ``--size`` bytes the same way
(bursts of ``--burst``, the next burst once the last is confirmed) to a quorum queue
of a vhost of its own, alternately with each connection class, and prints the
CPU each side spent per message: this process (the client) and, with the broker on
this machine, RabbitMQ (``beam.smp``)::

    .venv/bin/python benchmarks/bench_publish.py --url amqp://guest:guest@127.0.0.1:5672/ \\
        --management http://127.0.0.1:15672 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import pika

from axis.amqp import SelectConnection
from axis.bench import _broker_cpu, _cpu_seconds
from axis.broker.management import Management

VHOST = "axis-bench-publish"
QUEUE = "bench.publish"


def publish(cls: type[pika.SelectConnection], url: str, count: int, size: int, burst: int) -> None:
    """Publish ``count`` messages with confirms through a connection of class ``cls``."""
    body = os.urandom(size // 2 + 1).hex().encode()[:size]
    state: dict[str, Any] = {"sent": 0, "confirmed": 0}

    def on_open(connection: pika.SelectConnection) -> None:
        connection.channel(on_open_callback=on_channel)

    def on_channel(channel: Any) -> None:
        state["channel"] = channel
        channel.confirm_delivery(on_confirm, callback=lambda _f: send_burst())

    def send_burst() -> None:
        channel = state["channel"]
        for _ in range(min(burst, count - state["sent"])):
            channel.basic_publish("", QUEUE, body, pika.BasicProperties(delivery_mode=2))
            state["sent"] += 1

    def on_confirm(frame: Any) -> None:
        method = frame.method
        state["confirmed"] = method.delivery_tag if method.multiple else state["confirmed"] + 1
        if state["confirmed"] >= count:
            connection.close()
        elif state["confirmed"] == state["sent"]:
            send_burst()

    params = pika.URLParameters(url)
    params.virtual_host = VHOST
    connection = cls(
        params,
        on_open_callback=on_open,
        on_close_callback=lambda c, _r: c.ioloop.stop(),
    )
    connection.ioloop.start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--management", default="http://127.0.0.1:15672")
    parser.add_argument("--user", default="guest")
    parser.add_argument("--password", default="guest")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with Management(args.management, args.user, args.password) as mgmt:
        mgmt.delete_vhost(VHOST)
        mgmt.create_vhost(VHOST)
        mgmt.set_permissions(VHOST, args.user, ".*", ".*", ".*")
        try:
            print(f"{'connection':<42} client µs/msg  broker µs/msg")
            classes: list[type[pika.SelectConnection]] = [pika.SelectConnection, SelectConnection]
            for _ in range(args.rounds):
                for cls in classes:
                    mgmt.delete_queue(VHOST, QUEUE)  # a fresh queue for each run
                    mgmt.declare_queue(VHOST, QUEUE, arguments={"x-queue-type": "quorum"})
                    time.sleep(1)
                    client, broker = _cpu_seconds(os.getpid()), _broker_cpu()
                    publish(cls, args.url, args.messages, args.size, args.burst)
                    client = (_cpu_seconds(os.getpid()) - client) * 1e6 / args.messages
                    after = _broker_cpu()
                    name = f"{cls.__module__}.{cls.__name__}"
                    spent = (
                        "–"
                        if broker is None or after is None
                        else f"{(after - broker) * 1e6 / args.messages:.0f}"
                    )
                    print(f"{name:<42} {client:>13.0f}  {spent:>13}")
                classes.reverse()  # neither always runs first, after the other's clean-up
        finally:
            mgmt.delete_vhost(VHOST)


if __name__ == "__main__":
    main()
