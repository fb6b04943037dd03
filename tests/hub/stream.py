"""A steady stream of valid documents, timed end to end, in a process of its own.

``tests/hub/test_corpus.py`` replays the hostile corpus while this stream runs. The
corpus builds 2 MB bodies, 100,000-deep nestings and forged signatures in the test's
own process; a stream timed by threads of that process would be timed by whichever
thread holds the GIL, not by the hub. Here the publisher and the recipient's consumer
share a process with nothing else (signing one document takes about 0.2 ms).

The parent talks to it over stdin and stdout, one line each:

- stdin: the :class:`Spec` as JSON, then ``stop`` when the stream may end;
- stdout: ``baseline`` once ``minimum`` documents are sent, then the :class:`Timings`
  as JSON after every sent document arrived (or ``settle_s`` passed).

Times are ``time.monotonic()`` (CLOCK_MONOTONIC, the same in every process of the
machine, so the parent can compare its own instants with them), and the hub's
``x-axis-received-at`` against the arrival's wall-clock time for the in-hub share.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import sys
import threading
import time
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import pika

from axis.deliver import RECEIVED_AT
from schemas.samples import sample_edoc
from signing import Signer
from signing.pki import load_certificates, load_key
from tests.hub.conftest import Agency


@dataclass(frozen=True)
class Spec:
    """What to send, from whom, to whom, how fast."""

    sender: str
    sender_url: str
    key_path: str
    certificate_path: str
    recipient: str
    recipient_url: str
    rate: float
    minimum: int
    """Documents to send whatever happens: the baseline, before the parent's work."""
    maximum: int
    settle_s: float = 60.0


@dataclass
class Timings:
    """When each document was sent and arrived (monotonic), and the hub's share of it."""

    sent: dict[str, float] = field(default_factory=dict)
    arrived: dict[str, float] = field(default_factory=dict)
    in_hub: dict[str, float] = field(default_factory=dict)
    """Seconds from the hub's receipt (``x-axis-received-at``) to the recipient."""
    errors: list[str] = field(default_factory=list)


class Stream:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.timings = Timings()
        self.stop = threading.Event()
        self.consuming = threading.Event()
        self.done = threading.Event()
        self.baseline_sent = threading.Event()

    def publish(self) -> None:
        spec = self.spec
        signer = Signer(load_key(spec.key_path), load_certificates(spec.certificate_path)[0])
        sender = Agency(spec.sender, "", signer, spec.sender_url)
        rng = random.Random(11)
        sent = self.timings.sent
        try:
            start = time.monotonic()
            for n in itertools.count():
                if n >= spec.maximum or (self.stop.is_set() and n >= spec.minimum):
                    break
                if n == spec.minimum:
                    self.baseline_sent.set()
                document = sample_edoc(
                    spec.sender, [spec.recipient], document_number=n + 1, rng=rng
                )
                body = sender.sign(document)
                time.sleep(max(0.0, start + n / spec.rate - time.monotonic()))
                message_id = str(uuid.uuid4())
                sent[message_id] = time.monotonic()
                sender.publish(body, message_id=message_id)
        except BaseException:
            self.timings.errors.append(traceback.format_exc())
        finally:
            sender.close()
            self.baseline_sent.set()

    def consume(self) -> None:
        arrived, in_hub = self.timings.arrived, self.timings.in_hub

        def on_message(channel: Any, method: Any, props: pika.BasicProperties, body: bytes) -> None:
            now, wall = time.monotonic(), time.time()
            if props.message_id in arrived:
                return
            arrived[props.message_id] = now
            received = (props.headers or {}).get(RECEIVED_AT)
            if received:
                in_hub[props.message_id] = wall - datetime.fromisoformat(received).timestamp()

        try:
            params = pika.URLParameters(self.spec.recipient_url)
            with pika.BlockingConnection(params) as connection:
                channel = connection.channel()
                channel.basic_consume(
                    f"axis.inbox.{self.spec.recipient}", on_message, auto_ack=True
                )
                self.consuming.set()
                while not self.done.is_set():
                    connection.process_data_events(time_limit=0.05)
        except BaseException:
            self.timings.errors.append(traceback.format_exc())
        finally:
            self.consuming.set()

    def all_arrived(self) -> bool:
        return self.timings.sent.keys() <= self.timings.arrived.keys()


def main() -> None:
    # The protocol has stdout to itself: anything else printed goes to stderr.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    spec = Spec(**json.loads(sys.stdin.readline()))
    stream = Stream(spec)
    consumer = threading.Thread(target=stream.consume, daemon=True)
    publisher = threading.Thread(target=stream.publish, daemon=True)
    consumer.start()
    stream.consuming.wait()
    publisher.start()
    stream.baseline_sent.wait()
    protocol.write("baseline\n")
    sys.stdin.readline()  # "stop", or the parent's end
    stream.stop.set()
    publisher.join(timeout=spec.settle_s)
    if publisher.is_alive():
        stream.timings.errors.append(
            f"the publisher was still publishing {spec.settle_s} s after stop"
        )
    deadline = time.monotonic() + spec.settle_s
    while not stream.all_arrived() and time.monotonic() < deadline and not stream.timings.errors:
        time.sleep(0.05)
    stream.done.set()
    consumer.join(timeout=10)
    protocol.write(json.dumps(asdict(stream.timings)) + "\n")


if __name__ == "__main__":
    main()
