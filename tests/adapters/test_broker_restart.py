"""A real RabbitMQ restart: the SDK and the hub's router reconnect and nothing is lost.

The broker's application is stopped and started again (``rabbitmqctl stop_app`` /
``start_app``; the Erlang node and its file limits stay), with a send in flight
across the restart. Every document must get exactly one receipt and reach its
recipient exactly once.
"""

from __future__ import annotations

import subprocess
import threading

import pytest
from adapters_support import client_for

pytestmark = pytest.mark.slow


def restart_rabbitmq() -> None:
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, timeout=180)
    subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, timeout=300)
    subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True, timeout=300)


def take(client, count: int, timeout: float) -> list:
    found = []
    for delivery in client.receive(timeout=timeout):
        delivery.ack()  # taken: leaving the loop must not hand it back
        if delivery.kind == "edoc":
            found.append(delivery)
        if len(found) == count:
            break
    return found


def test_sdk_and_router_ride_out_a_broker_restart_with_one_receipt_and_one_delivery_each(
    axis_hub,
) -> None:
    a, b = axis_hub.register("RSTA"), axis_hub.register("RSTB")
    edocs = [a.edoc([b.code], number=n + 1) for n in range(12)]
    with (
        client_for(axis_hub, a, reconnect_timeout=180) as ca,
        client_for(axis_hub, b, reconnect_timeout=180) as cb,
    ):
        receipts = [ca.send(edoc, wait=60).receipt for edoc in edocs[:5]]
        received = take(cb, 5, timeout=30)

        in_flight: list = []
        restarting = threading.Thread(target=restart_rabbitmq)
        restarting.start()
        in_flight.append(ca.send(edocs[5], wait=240))  # published before, during or after the stop
        restarting.join()
        receipts += [r.receipt for r in in_flight]
        receipts += [ca.send(edoc, wait=120).receipt for edoc in edocs[6:]]
        received += take(cb, len(edocs) - len(received), timeout=120)
        received += take(cb, 1, timeout=3)  # and nothing twice

    assert ca.reconnects >= 1 and cb.reconnects >= 1
    assert all(r is not None for r in receipts)
    assert len({r.receipt_id for r in receipts}) == len(edocs)
    assert sorted(d.edoc.document_id for d in received) == sorted(e.document_id for e in edocs)
    assert len({d.receipt_id for d in received}) == len(edocs)
