"""``axis bench``: the hub's throughput against the broker's own limit, in one run.

Two phases on the same RabbitMQ, with the same message size and queue types:

- **baseline**: a null relay, the hub's own :class:`~axis.router.Router` loop (prefetch,
  batches, asynchronous publisher confirms, ack after confirm) with a pipeline that
  does no work: consume from a quorum queue, publish to another, ack;
- **hub**: ``axis serve`` with signed edocs from simulated agencies to random
  recipients, through the real router.

Each phase preloads its inbound queue, then drains it; throughput is measured from
the first delivery to the last, so start-up is not counted. A third phase offers
the running hub a steady load (300 documents/s by default) and measures end-to-end
latency, agency publish → recipient receives.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pika

import schemas
from axis import logs
from axis.amqp import parameters
from axis.broker.management import Management
from axis.config import Config, from_mapping
from axis.deliver import RECEIVED_AT, Outgoing
from axis.demo import percentile, prepare
from axis.pipeline import Pipeline
from axis.record import Inbound, Item
from axis.router import Router
from schemas.samples import sample_edoc
from signing import Signer
from signing.pki import load_certificates, load_key

BENCH_VHOST = "axis-bench"
BENCH_HUB = "axis-bench-hub"
RELAY_OUT = "bench.out"
QUORUM = {"x-queue-type": "quorum"}


class NullPipeline:
    """The router's pipeline with the work taken out: forward each body, record nothing."""

    def __init__(self) -> None:
        self.in_flight: set[str] = set()

    def handle(
        self, batch: Sequence[Inbound], *, confirmed: Sequence[Item] = ()
    ) -> tuple[list[Item], list[Outgoing]]:
        """Publish every message of the batch to :data:`RELAY_OUT`, unchanged."""
        return [], [Outgoing("", RELAY_OUT, m.body, m.type or "", m.message_id) for m in batch]

    def confirm(self, items: Sequence[Item]) -> None:
        """Nothing to record."""

    def sign_chain_head(self) -> None:
        """No audit chain to sign."""


def _relay_main(mapping: dict[str, Any], base: str) -> None:
    logs.configure("console", "warning")  # stdout is the bench's, for --json
    config = from_mapping(mapping, base_dir=Path(base), env={})
    Router(config, cast(Pipeline, NullPipeline())).run()


def _tree_usage(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS MiB) of a process and its children, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [pid] + [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == pid]
    cpu = peak = 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / ticks
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak += int(line.split()[1]) / 1024
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return cpu, peak


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, IndexError):
        return -1


class Counter:
    """Consumes queues as the admin and notes when each message arrived, by message id."""

    def __init__(
        self, url_params: pika.ConnectionParameters, queues: Sequence[str], kinds: set[str]
    ) -> None:
        self.arrived: dict[str, float] = {}
        self.received_at: dict[str, float] = {}
        """The hub's ``x-axis-received-at`` of each message, as a ``time.time()`` value."""
        self._params = url_params
        self._queues = queues
        self._kinds = kinds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        connection = pika.BlockingConnection(self._params)
        channel = connection.channel()
        channel.basic_qos(prefetch_count=2000)

        def on_message(ch: Any, method: Any, props: Any, body: bytes) -> None:
            if (props.type or "") in self._kinds and props.message_id:
                self.arrived.setdefault(props.message_id, time.time())
                received = (props.headers or {}).get(RECEIVED_AT)
                if received:
                    self.received_at.setdefault(
                        props.message_id, datetime.fromisoformat(received).timestamp()
                    )

        for queue in self._queues:
            channel.basic_consume(queue, on_message, auto_ack=True)
        while not self._stop.is_set():
            connection.process_data_events(time_limit=0.05)
        connection.close()

    def wait_for(self, ids: set[str], timeout: float) -> bool:
        """Whether every id in ``ids`` arrived within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ids <= self.arrived.keys():
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        """Stop consuming."""
        self._stop.set()
        self._thread.join(timeout=10)


def _rate(arrived: dict[str, float], ids: set[str]) -> float:
    times = sorted(arrived[i] for i in ids if i in arrived)
    return (
        (len(times) - 1) / (times[-1] - times[0])
        if len(times) > 1 and times[-1] > times[0]
        else 0.0
    )


def _queue_depth(channel: Any, queue: str) -> int:
    return int(channel.queue_declare(queue, passive=True).method.message_count)


def _wait_depth(
    params: pika.ConnectionParameters, queue: str, count: int, timeout: float = 120
) -> None:
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        while _queue_depth(channel, queue) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{queue} did not fill up")
            time.sleep(0.1)
    finally:
        connection.close()


def run(
    folder: Path,
    *,
    documents: int = 5000,
    agencies: int = 20,
    size: int = 8192,
    workers: int = 1,
    rate: float = 300.0,
    latency_seconds: float = 5.0,
    user_tags: tuple[str, ...] = (),
    report: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Run the three phases and return the figures (what ``--json`` prints)."""
    config, passwords = prepare(
        folder, agencies, report, user_tags, vhost=BENCH_VHOST, hub_name=BENCH_HUB
    )
    codes = sorted(passwords)
    rng = random.Random(7)
    signers = {
        code: Signer(
            load_key(folder / "certs" / f"{code}.key"),
            load_certificates(folder / "certs" / f"{code}.pem")[0],
        )
        for code in codes
    }

    def signed(count: int, start: int) -> list[tuple[str, str, bytes]]:
        out = []
        for n in range(start, start + count):
            sender = codes[n % len(codes)]
            recipient = rng.choice([c for c in codes if c != sender])
            edoc = sample_edoc(sender, [recipient], document_number=n + 1, size=size, rng=rng)
            out.append((sender, str(uuid.uuid4()), signers[sender].sign(schemas.to_element(edoc))))
        return out

    report(f"signing {documents} documents of about {size} bytes (not timed)")
    load = signed(documents, 0)
    admin = parameters(
        config.broker,
        user=config.management.user,
        password=config.management.secret(),
        name="bench",
    )
    baseline = _baseline(config, admin, load, report)
    report(f"baseline null relay: {baseline:,.0f} messages/s")
    hub_rate, cpu_ms, peak, latencies, in_hub = _hub(
        config, admin, passwords, load, codes, workers, rate, latency_seconds, signed, report
    )
    report(f"hub: {hub_rate:,.0f} documents/s with {workers} router(s)")
    return {
        "docs": documents,
        "size": size,
        "workers": workers,
        "baseline_docs_per_s": round(baseline, 1),
        "hub_docs_per_s": round(hub_rate, 1),
        "ratio": round(hub_rate / baseline, 3) if baseline else 0.0,
        "router_cpu_ms_per_doc": round(cpu_ms, 3),
        "peak_rss_mib": round(peak, 1),
        "latency_ms": {
            "offered_docs_per_s": rate,
            "p50": round(percentile(latencies, 0.50), 1),
            "p95": round(percentile(latencies, 0.95), 1),
            "p99": round(percentile(latencies, 0.99), 1),
        },
        "in_hub_latency_ms": {
            "p50": round(percentile(in_hub, 0.50), 1),
            "p95": round(percentile(in_hub, 0.95), 1),
            "p99": round(percentile(in_hub, 0.99), 1),
        },
    }


def _baseline(
    config: Config,
    admin: pika.ConnectionParameters,
    load: list[tuple[str, str, bytes]],
    report: Callable[[str], None],
) -> float:
    relay_vhost = f"{BENCH_VHOST}-relay"
    with Management(
        config.management.url, config.management.user, config.management.secret()
    ) as mgmt:
        mgmt.delete_vhost(relay_vhost)
        mgmt.create_vhost(relay_vhost)
        mgmt.set_permissions(relay_vhost, config.management.user, ".*", ".*", ".*")
        for queue in ("axis.inbound", RELAY_OUT):
            mgmt.declare_queue(relay_vhost, queue, arguments=QUORUM)
    relay_params = parameters(
        dataclasses.replace(config.broker, vhost=relay_vhost),
        user=config.management.user,
        password=config.management.secret(),
        name="bench-relay-load",
    )
    connection = pika.BlockingConnection(relay_params)
    channel = connection.channel()
    report(f"baseline: preloading {len(load)} messages")
    for _, message_id, body in load:
        channel.basic_publish(
            "",
            "axis.inbound",
            body,
            pika.BasicProperties(delivery_mode=2, type="edoc", message_id=message_id),
        )
    connection.close()
    _wait_depth(relay_params, "axis.inbound", len(load))
    counter = Counter(relay_params, [RELAY_OUT], {"edoc"})
    mapping = {
        "broker": {
            "url": config.broker.url,
            "vhost": relay_vhost,
            "user": config.management.user,
            "password": config.management.secret(),
        },
        "router": {
            "batch_wait_ms": config.router.batch_wait_ms,
            "prefetch": config.router.prefetch,
            "batch_size": config.router.batch_size,
        },
        "log": {"level": "warning"},
    }
    relay = multiprocessing.get_context("spawn").Process(
        target=_relay_main, args=(mapping, str(config.source.parent if config.source else "."))
    )
    relay.start()
    try:
        ids = {message_id for _, message_id, _ in load}
        if not counter.wait_for(ids, timeout=300):
            raise RuntimeError("the relay did not forward every message")
        return _rate(counter.arrived, ids)
    finally:
        counter.close()
        if relay.pid:
            os.kill(relay.pid, signal.SIGTERM)
        relay.join(timeout=30)
        with Management(
            config.management.url, config.management.user, config.management.secret()
        ) as mgmt:
            mgmt.delete_vhost(relay_vhost)


def _hub(
    config: Config,
    admin: pika.ConnectionParameters,
    passwords: dict[str, str],
    load: list[tuple[str, str, bytes]],
    codes: list[str],
    workers: int,
    rate: float,
    latency_seconds: float,
    signed: Callable[[int, int], list[tuple[str, str, bytes]]],
    report: Callable[[str], None],
) -> tuple[float, float, float, list[float], list[float]]:
    connections = {
        code: pika.BlockingConnection(
            parameters(config.broker, user=code, password=passwords[code], name=f"bench-{code}")
        )
        for code in codes
    }
    channels = {code: c.channel() for code, c in connections.items()}
    report(f"hub: preloading {len(load)} signed documents from {len(codes)} agencies")
    for sender, message_id, body in load:
        channels[sender].basic_publish(
            "axis.submit",
            "",
            body,
            pika.BasicProperties(
                delivery_mode=2,
                content_type="application/xml",
                type="edoc",
                message_id=message_id,
                user_id=sender,
            ),
        )
    _wait_depth(admin, "axis.inbound", len(load))
    counter = Counter(admin, [f"axis.inbox.{code}" for code in codes], {"edoc"})
    log = (config.source.parent if config.source else Path(".")) / "hub.log"
    hub = subprocess.Popen(
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
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        ids = {message_id for _, message_id, _ in load}
        deadline = time.monotonic() + 600
        while not counter.arrived and time.monotonic() < deadline:
            time.sleep(0.01)
        cpu_start, _ = _tree_usage(hub.pid)
        if not counter.wait_for(ids, timeout=600):
            raise RuntimeError("the hub did not deliver every document")
        cpu_end, peak = _tree_usage(hub.pid)
        hub_rate = _rate(counter.arrived, ids)
        cpu_ms = (cpu_end - cpu_start) * 1000 / len(load)

        steady = signed(int(rate * latency_seconds), len(load))
        report(f"latency: offering {rate:.0f} documents/s for {latency_seconds:.0f} s")
        published: dict[str, float] = {}
        start = time.monotonic()
        for n, (sender, message_id, body) in enumerate(steady):
            due = start + n / rate
            while time.monotonic() < due:
                time.sleep(max(0.0, min(0.002, due - time.monotonic())))
            published[message_id] = time.time()
            channels[sender].basic_publish(
                "axis.submit",
                "",
                body,
                pika.BasicProperties(
                    delivery_mode=2,
                    content_type="application/xml",
                    type="edoc",
                    message_id=message_id,
                    user_id=sender,
                ),
            )
        counter.wait_for(set(published), timeout=120)
        latencies = [
            (counter.arrived[m] - t) * 1000 for m, t in published.items() if m in counter.arrived
        ]
        in_hub = [
            (counter.arrived[m] - counter.received_at[m]) * 1000
            for m in published
            if m in counter.arrived and m in counter.received_at
        ]
        return hub_rate, cpu_ms, peak, latencies, in_hub
    finally:
        counter.close()
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(timeout=60)
        except subprocess.TimeoutExpired:
            hub.kill()
        for connection in connections.values():
            connection.close()
