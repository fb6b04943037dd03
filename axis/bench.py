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

import contextlib
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
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import pika
import pika.exceptions
import sqlalchemy as sa

import schemas
from axis import logs
from axis.admin import read_agencies_csv
from axis.amqp import parameters
from axis.broker.management import Management
from axis.config import Config, from_mapping
from axis.db import is_sqlite
from axis.deliver import RECEIVED_AT, Outgoing
from axis.demo import AGENCIES_CSV, GOVERNMENT_OFFICE, percentile, prepare
from axis.pipeline import Pipeline
from axis.record import Inbound, Item
from axis.router import Router
from schemas.samples import sample_edoc
from signing import Signer
from signing.pki import load_certificates, load_key

BENCH_VHOST = "axis-bench"
BENCH_HUB = "axis-bench-hub"
RELAY_OUT = "bench.out"
PROVINCES = "@provinces"
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
    pids = [pid] + [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == pid]
    cpu = peak = 0.0
    for p in pids:
        try:
            cpu += _cpu_seconds(p)
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak += int(line.split()[1]) / 1024
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return cpu, peak


def _broker_cpu() -> float | None:
    """CPU seconds a RabbitMQ node on this machine (beam.smp) has used, None without one."""
    total = None
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if not Path(f"/proc/{p}/comm").read_text().startswith("beam.smp"):
                continue
            total = (total or 0.0) + _cpu_seconds(int(p))
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total


_CPUCLOCK_SCHED = 2
"""Linux's process CPU clock that counts the scheduler's nanoseconds (CPUCLOCK_SCHED)."""


def _cpu_seconds(pid: int) -> float:
    """CPU seconds process ``pid`` has used, all its threads (ended ones too).

    The kernel's CPU clock of the process, in nanoseconds: the clock id Linux derives
    from a pid (as ``clock_getcpuclockid(3)`` does). Where there is none, the 10 ms
    ticks of ``/proc/PID/stat``, which a quick run of a few hundred messages can
    fall within.
    """
    try:
        return time.clock_gettime(((~pid) << 3) | _CPUCLOCK_SCHED)
    except OSError:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _per_message_ms(start: float | None, end: float | None, count: int) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000 / count, 3)


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
        self.copies: dict[str, list[float]] = {}
        """Every arrival of each message id (a broadcast arrives once per recipient)."""
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
                now = time.time()
                self.arrived.setdefault(props.message_id, now)
                self.copies.setdefault(props.message_id, []).append(now)
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
    params: pika.ConnectionParameters,
    queue: str,
    count: int,
    timeout: float = 120,
    *,
    below: bool = False,
    poll: float = 0.1,
) -> None:
    """Wait until ``queue`` holds at least ``count`` messages (with ``below``: fewer)."""
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        deadline = time.monotonic() + timeout
        while (_queue_depth(channel, queue) < count) != below:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{queue} did not {'drain' if below else 'fill up'}")
            time.sleep(poll)
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
    latency_seconds: float = 10.0,
    settle_seconds: float = 3.0,
    broadcasts: int = 10,
    soak_seconds: float = 0.0,
    agency_keys: str = "rsa",
    database_url: str | None = None,
    user_tags: tuple[str, ...] = (),
    report: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Run the phases and return the figures (what ``--json`` prints).

    Agencies sign with ``agency_keys`` (``rsa``: RSA-2048, as the government CA
    issues them; ``ec``: P-256). With ``broadcasts``, all 95 agencies are
    registered so the Government Office can address ``@provinces``; ``agencies``
    of them send and receive the throughput and latency load. A PostgreSQL
    ``database_url`` names a database the bench drops and creates afresh (several
    routers share a database best on PostgreSQL); by default, SQLite in ``folder``.
    """
    if database_url and not is_sqlite(database_url):
        _recreate_database(database_url)
    registered = len(read_agencies_csv(AGENCIES_CSV)) if broadcasts else agencies
    config, passwords = prepare(
        folder,
        max(agencies, registered),
        report,
        user_tags,
        vhost=BENCH_VHOST,
        hub_name=BENCH_HUB,
        key_algorithm=agency_keys,
        database_url=database_url,
    )
    office = GOVERNMENT_OFFICE if GOVERNMENT_OFFICE in passwords else min(passwords)
    codes = [office, *sorted(c for c in passwords if c != office)[: agencies - 1]]
    docs = Documents(folder, codes, size)
    report(f"signing {documents} documents of about {size} bytes with {agency_keys} keys")
    load = docs.signed(documents)
    admin = parameters(
        config.broker,
        user=config.management.user,
        password=config.management.secret(),
        name="bench",
    )
    baseline, relay_cpu = _baseline(config, admin, load, report)
    report(f"baseline null relay: {baseline:,.0f} messages/s")
    figures: dict[str, Any] = {
        "docs": documents,
        "size": size,
        "workers": workers,
        "agency_keys": agency_keys,
        "baseline_docs_per_s": round(baseline, 1),
        "baseline_cpu_ms_per_msg": relay_cpu,
    }
    with HubUnderTest(config, admin, passwords, sorted(passwords), workers) as hub:
        broker_before = _broker_cpu()
        hub_rate, cpu_ms = hub.drain(load)
        report(f"hub: {hub_rate:,.0f} documents/s with {workers} router(s)")
        figures.update(
            hub_docs_per_s=round(hub_rate, 1),
            ratio=round(hub_rate / baseline, 3) if baseline else 0.0,
            router_cpu_ms_per_doc=round(cpu_ms, 3),
            broker_cpu_ms_per_doc=_per_message_ms(broker_before, _broker_cpu(), len(load)),
        )
        # The latency target is for a steady load: the drain's burst (its WAL
        # checkpoint, the broker's queue clean-up) is let go by first.
        steady_load = docs.signed(int(rate * latency_seconds))
        time.sleep(settle_seconds)
        report(f"latency: offering {rate:.0f} documents/s for {latency_seconds:.0f} s")
        latencies, in_hub = hub.steady(steady_load, rate)
        figures["latency_ms"] = {
            "offered_docs_per_s": rate,
            "seconds": latency_seconds,
            **_quantiles(latencies),
        }
        figures["in_hub_latency_ms"] = _quantiles(in_hub)
        if broadcasts:
            report(f"broadcast: {broadcasts} documents from {office} to {PROVINCES}")
            copies = hub.broadcast(docs.broadcasts(office, broadcasts))
            figures["broadcast_latency_ms"] = {
                "documents": broadcasts,
                "deliveries": len(copies),
                **_quantiles(copies),
            }
        if soak_seconds:
            report(f"soak: {rate:.0f} documents/s for {soak_seconds:.0f} s, sampling RSS")
            figures["memory"] = hub.soak(docs, rate, soak_seconds)
        figures["peak_rss_mib"] = round(hub.usage()[1], 1)
    return figures


def _recreate_database(url: str) -> None:
    """Drop and create the PostgreSQL database ``url`` names, for a run of its own."""
    target = sa.make_url(url)
    name = target.database
    if not name or name in ("postgres", "template0", "template1"):
        raise ValueError(f"the bench will not recreate the database {name!r}")
    engine = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def _quantiles(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 0.50), 1),
        "p95": round(percentile(values, 0.95), 1),
        "p99": round(percentile(values, 0.99), 1),
    }


class Documents:
    """Signed edocs from the bench's agencies, numbered so none repeats a DocumentId."""

    def __init__(self, folder: Path, codes: list[str], size: int) -> None:
        self.codes = codes
        self.size = size
        self.next_number = 1
        self.rng = random.Random(7)
        self.folder = folder
        self.signers: dict[str, Signer] = {}

    def signer(self, code: str) -> Signer:
        """The signer of agency ``code``, loaded once."""
        if code not in self.signers:
            self.signers[code] = Signer(
                load_key(self.folder / "certs" / f"{code}.key"),
                load_certificates(self.folder / "certs" / f"{code}.pem")[0],
            )
        return self.signers[code]

    def _sign(self, sender: str, to: list[str]) -> tuple[str, str, bytes]:
        n, self.next_number = self.next_number, self.next_number + 1
        edoc = sample_edoc(sender, to, document_number=n, size=self.size, rng=self.rng)
        return sender, str(uuid.uuid4()), self.signer(sender).sign(schemas.to_element(edoc))

    def signed(self, count: int) -> list[tuple[str, str, bytes]]:
        """``count`` documents, each from the next agency to a random other one."""
        out = []
        for _ in range(count):
            sender = self.codes[self.next_number % len(self.codes)]
            recipient = self.rng.choice([c for c in self.codes if c != sender])
            out.append(self._sign(sender, [recipient]))
        return out

    def ahead(self, count: int, slice_size: int = 50) -> Iterator[list[tuple[str, str, bytes]]]:
        """``count`` documents as :meth:`signed` makes them, signed by another process.

        For runs too long to sign beforehand: the slices come as they are signed,
        while this process paces their publishing.
        """
        context = multiprocessing.get_context("spawn")
        queue: Any = context.Queue(maxsize=20)
        signer = context.Process(
            target=_sign_ahead,
            args=(str(self.folder), self.codes, self.size, self.next_number, count, slice_size),
            kwargs={"queue": queue},
            daemon=True,
        )
        signer.start()
        self.next_number += count
        try:
            for _ in range(0, count, slice_size):
                yield queue.get(timeout=120)
        finally:
            signer.kill()
            signer.join(timeout=10)

    def broadcasts(self, sender: str, count: int) -> list[tuple[str, str, bytes]]:
        """``count`` documents from ``sender`` to every province."""
        return [self._sign(sender, [PROVINCES]) for _ in range(count)]


def _baseline(
    config: Config,
    admin: pika.ConnectionParameters,
    load: list[tuple[str, str, bytes]],
    report: Callable[[str], None],
) -> tuple[float, dict[str, float | None]]:
    """The relay's messages/s, and its and the broker's CPU per message (ms)."""
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
        # CPU counts from when the relay starts to drain (as the hub's does).
        _wait_depth(relay_params, "axis.inbound", len(load), timeout=600, below=True, poll=0.005)
        assert relay.pid is not None
        relay_before, broker_before = _tree_usage(relay.pid)[0], _broker_cpu()
        ids = {message_id for _, message_id, _ in load}
        if not counter.wait_for(ids, timeout=300):
            raise RuntimeError("the relay did not forward every message")
        cpu = {
            "relay": _per_message_ms(relay_before, _tree_usage(relay.pid)[0], len(load)),
            "broker": _per_message_ms(broker_before, _broker_cpu(), len(load)),
        }
        return _rate(counter.arrived, ids), cpu
    finally:
        counter.close()
        if relay.pid:
            os.kill(relay.pid, signal.SIGTERM)
        relay.join(timeout=30)
        with Management(
            config.management.url, config.management.user, config.management.secret()
        ) as mgmt:
            mgmt.delete_vhost(relay_vhost)


def _sign_ahead(
    folder: str, codes: list[str], size: int, first: int, count: int, slice_size: int, queue: Any
) -> None:
    docs = Documents(Path(folder), codes, size)
    docs.next_number = first
    docs.rng = random.Random(first)
    for start in range(0, count, slice_size):
        queue.put(docs.signed(min(slice_size, count - start)))


class HubUnderTest:
    """``axis serve`` in its own process, the agencies' connections and the inbox counter."""

    def __init__(
        self,
        config: Config,
        admin: pika.ConnectionParameters,
        passwords: dict[str, str],
        inboxes: list[str],
        workers: int,
    ) -> None:
        self.config = config
        self.admin = admin
        self.passwords = passwords
        self.inboxes = inboxes
        self.workers = workers
        self.connections: dict[str, pika.BlockingConnection] = {}
        self.channels: dict[str, Any] = {}

    def __enter__(self) -> HubUnderTest:
        self.counter = Counter(self.admin, [f"axis.inbox.{c}" for c in self.inboxes], {"edoc"})
        self.process: subprocess.Popen[bytes] | None = None
        return self

    def _start(self) -> None:
        log = (self.config.source.parent if self.config.source else Path(".")) / "hub.log"
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from cli import main; main()",
                "--config",
                str(self.config.source),
                "serve",
                "--workers",
                str(self.workers),
            ],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def __exit__(self, *exc: object) -> None:
        self.counter.close()
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        for connection in self.connections.values():
            # One already lost must not take the figures with it.
            with contextlib.suppress(pika.exceptions.AMQPError):
                if connection.is_open:
                    connection.close()

    def channel(self, code: str) -> Any:
        """A channel of agency ``code``'s own connection, opened on first use."""
        if code not in self.channels:
            # No heartbeats: the bench's agencies sit idle while it waits for
            # deliveries, and a blocking connection only answers them when used.
            self.connections[code] = pika.BlockingConnection(
                parameters(
                    dataclasses.replace(self.config.broker, heartbeat=0),
                    user=code,
                    password=self.passwords[code],
                    name=f"bench-{code}",
                )
            )
            self.channels[code] = self.connections[code].channel()
        return self.channels[code]

    def publish(self, sender: str, message_id: str, body: bytes) -> None:
        """Submit one signed edoc as agency ``sender``."""
        self.channel(sender).basic_publish(
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

    @property
    def pid(self) -> int:
        """The hub's process id (it runs once :meth:`drain` has started it)."""
        assert self.process is not None, "the hub starts in drain()"
        return self.process.pid

    def usage(self) -> tuple[float, float]:
        """(CPU seconds, peak RSS MiB) of the hub's processes so far."""
        return _tree_usage(self.pid)

    def drain(self, load: list[tuple[str, str, bytes]]) -> tuple[float, float]:
        """Preload ``load``, start the hub, let it drain: (documents/s, router CPU ms/doc)."""
        for sender, message_id, body in load:
            self.publish(sender, message_id, body)
        _wait_depth(self.admin, "axis.inbound", len(load))
        self._start()
        # The router consumes once it is set up (imports, migrations, topology): its
        # CPU counts from then, when the queue starts to drain, not from the first
        # delivery (a batch is decided before any of it is delivered).
        _wait_depth(self.admin, "axis.inbound", len(load), timeout=600, below=True, poll=0.005)
        cpu_start, _ = self.usage()
        ids = {message_id for _, message_id, _ in load}
        if not self.counter.wait_for(ids, timeout=600):
            raise RuntimeError("the hub did not deliver every document")
        cpu_end, _ = self.usage()
        return _rate(self.counter.arrived, ids), (cpu_end - cpu_start) * 1000 / len(load)

    def steady(
        self, load: list[tuple[str, str, bytes]], rate: float
    ) -> tuple[list[float], list[float]]:
        """Offer ``load`` at ``rate``/s: end-to-end latencies, and the part in the hub (ms)."""
        published = self._paced(load, rate)
        self.counter.wait_for(set(published), timeout=120)
        arrived, received = self.counter.arrived, self.counter.received_at
        latencies = [(arrived[m] - t) * 1000 for m, t in published.items() if m in arrived]
        in_hub = [
            (arrived[m] - received[m]) * 1000 for m in published if m in arrived and m in received
        ]
        return latencies, in_hub

    def broadcast(self, load: list[tuple[str, str, bytes]], gap_s: float = 0.5) -> list[float]:
        """Send each broadcast ``gap_s`` apart; the latency of every copy delivered (ms)."""
        published = self._paced(load, 1 / gap_s)
        self.counter.wait_for(set(published), timeout=120)
        time.sleep(1.0)  # the last copies of the last broadcast
        return [
            (arrived - published[m]) * 1000
            for m in published
            for arrived in self.counter.copies.get(m, ())
        ]

    def soak(self, docs: Documents, rate: float, seconds: float) -> dict[str, Any]:
        """Offer ``rate``/s for ``seconds``, signing as it goes; sample the hub's RSS."""
        samples: list[tuple[float, float]] = []
        published: dict[str, float] = {}
        start = time.monotonic()
        next_sample = start
        for load in docs.ahead(int(rate * seconds)):
            now = time.monotonic()
            if now >= next_sample:
                samples.append((round(now - start, 1), _tree_rss(self.pid)))
                next_sample += 5.0
            published.update(self._paced(load, rate, start=start, first=len(published)))
        samples.append((round(time.monotonic() - start, 1), _tree_rss(self.pid)))
        self.counter.wait_for(set(published), timeout=120)
        lost = sum(1 for m in published if m not in self.counter.arrived)
        warm = [rss for at, rss in samples if at >= min(60.0, seconds / 10)] or [samples[-1][1]]
        first, last = warm[0], samples[-1][1]
        return {
            "seconds": seconds,
            "documents": len(published),
            "lost": lost,
            "rss_after_warmup_mib": round(first, 1),
            "rss_end_mib": round(last, 1),
            "rss_growth_pct": round((last - first) * 100 / first, 1) if first else 0.0,
            "samples": samples,
        }

    def _paced(
        self,
        load: list[tuple[str, str, bytes]],
        rate: float,
        *,
        start: float | None = None,
        first: int = 0,
    ) -> dict[str, float]:
        """Publish ``load`` at ``rate``/s, document ``n`` due at ``start + n / rate``."""
        published: dict[str, float] = {}
        start = time.monotonic() if start is None else start
        for n, (sender, message_id, body) in enumerate(load, start=first):
            due = start + n / rate
            while time.monotonic() < due:
                time.sleep(max(0.0, min(0.002, due - time.monotonic())))
            published[message_id] = time.time()
            self.publish(sender, message_id, body)
        return published


def _tree_rss(pid: int) -> float:
    """Resident memory (MiB) of a process and its children, now."""
    pids = [pid] + [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == pid]
    total = 0.0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total
