"""Assembling and running the hub's routers from a :class:`~axis.config.Config`."""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import time
from collections.abc import Sequence

import pika
import structlog

from axis import db, logs
from axis.amqp import parameters
from axis.archive import Archive
from axis.broker.topology import declare_hub_topology
from axis.config import Config, ConfigError
from axis.pipeline import Pipeline
from axis.receipts import ReceiptWriter
from axis.router import Router
from signing import Signer, TrustStore, Verifier
from signing.pki import load_certificates, load_key

log = structlog.get_logger("axis.service")


def trust_store(config: Config) -> TrustStore:
    """The trust anchors and CRLs agencies' certificates are checked against."""
    if not config.trust.anchors:
        raise ConfigError(
            "at least one trust anchor is required", key="trust.anchors", source=str(config.source)
        )
    for path in (*config.trust.anchors, *config.trust.crls):
        if not path.is_file():
            raise ConfigError(
                f"file {path} not found", key="trust.anchors", source=str(config.source)
            )
    return TrustStore.from_files(config.trust.anchors, config.trust.crls)


def hub_signer(config: Config) -> Signer:
    """The hub's own signer (receipts, rejections, chain heads)."""
    for key, path in (
        ("signing.key", config.signing.key),
        ("signing.certificate", config.signing.certificate),
    ):
        if not path.is_file():
            raise ConfigError(f"file {path} not found", key=key, source=str(config.source))
    certificates = load_certificates(config.signing.certificate)
    return Signer(load_key(config.signing.key), certificates[0], certificates[1:])


def build_pipeline(config: Config, *, background_checkpoint: bool = False) -> Pipeline:
    """A pipeline wired to the configured database, archive, trust store and hub key.

    ``background_checkpoint``: the caller runs a :class:`axis.db.Checkpointer`.
    """
    return Pipeline(
        engine=db.make_engine(config.database.url, background_checkpoint=background_checkpoint),
        archive=Archive(config.hub.archive_dir),
        verifier=Verifier(trust_store(config), legacy_until=config.signing.legacy_profile_until),
        writer=ReceiptWriter(hub_signer(config)),
        hub_user=config.broker.user,
        max_bytes=config.hub.max_message_bytes,
    )


def declare_topology(config: Config) -> None:
    """Declare PROTOCOL section 2's exchanges and queues (idempotent)."""
    connection = pika.BlockingConnection(parameters(config.broker, name="axis-setup"))
    try:
        declare_hub_topology(connection.channel())
    finally:
        connection.close()


def run_router(config: Config) -> None:
    """Run one router in this process until SIGTERM/SIGINT."""
    logs.configure(config.log.format, config.log.level)
    router = Router(config, build_pipeline(config, background_checkpoint=True))
    # Out of the collector's way: the objects of start-up (modules, schemas, the
    # engine, the registry) would otherwise be traversed by every full collection,
    # about 100,000 of them; each such pause (22-36 ms) held up the batch it fell in
    # and every message behind it. Frozen, a full collection takes 2-5 ms.
    gc.collect()
    gc.freeze()
    log.info("router.start", pid=os.getpid())
    with db.Checkpointer(config.database.url):
        router.run()


def serve(config: Config, workers: int | None = None) -> int:
    """Bring the database up to date, declare the topology and run ``workers`` routers.

    With several workers each is its own process on the same inbound queue (the
    broker spreads messages between them); a worker that dies is restarted.
    SIGTERM/SIGINT stop them all gracefully. Returns the exit code.
    """
    logs.configure(config.log.format, config.log.level)
    db.upgrade(config.database.url)
    build_pipeline(config)  # fail fast on a bad key, certificate or trust anchor
    declare_topology(config)
    count = workers or config.router.workers
    if count == 1:
        run_router(config)
        return 0
    return _supervise(config, count)


def _supervise(config: Config, count: int) -> int:
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start() -> multiprocessing.process.BaseProcess:
        process = context.Process(target=run_router, args=(config,), daemon=False)
        process.start()
        return process

    def on_signal(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    processes = [start() for _ in range(count)]
    log.info("serve.workers", count=count, pids=[p.pid for p in processes])
    while not stopping:
        time.sleep(0.5)
        for index, process in enumerate(processes):
            if not process.is_alive() and not stopping:
                log.warning("serve.worker_died", pid=process.pid, exitcode=process.exitcode)
                processes[index] = start()
    _stop_all(processes)
    return 0


def _stop_all(processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
    for process in processes:
        if process.is_alive() and process.pid:
            os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        process.join(timeout=60)
