"""The router's pipeline alone, without the broker: CPU per document by batch size.

Run against a hub folder that ``axis bench`` left (it has agencies' keys)::

    .venv/bin/axis bench --docs 200 --broadcasts 0 --dir /tmp/bench
    .venv/bin/python benchmarks/bench_pipeline.py /tmp/bench [--batch 1 4 100] [--docs 400]

For each batch size it signs ``--docs`` fresh documents (not timed), then runs them
through ``Pipeline.handle`` and ``Pipeline.confirm`` batch by batch, on the folder's
database and archive, and prints wall and CPU microseconds per document. CPU time
is the steadier figure on a shared machine. Small batches are the latency regime
(a hub at 300 documents/s decides a few at a time), large ones the throughput one.
``--profile`` prints cProfile's top functions instead.

``--floor`` times instead only what no hub can skip for a document: parse, validate
and verify it (``Pipeline.check``) and sign its receipt, without the database, the
archive or the broker. It is the floor under the router's CPU per document that
docs/performance.md sets against the budget the throughput target leaves it.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time
import uuid
from pathlib import Path

import schemas
from axis import logs
from axis.config import load
from axis.pipeline import Pipeline, utcnow
from axis.record import Inbound
from axis.service import build_pipeline
from schemas.samples import sample_edoc
from signing import Signer
from signing.pki import load_certificates, load_key


def signed_documents(folder: Path, count: int) -> list[tuple[str, bytes]]:
    """``count`` signed edocs between the folder's agencies, with fresh DocumentIds."""
    codes = sorted(p.stem for p in (folder / "certs").glob("*.key"))
    signers = {
        code: Signer(
            load_key(folder / "certs" / f"{code}.key"),
            load_certificates(folder / "certs" / f"{code}.pem")[0],
        )
        for code in codes
    }
    rng = random.Random()
    first = rng.randrange(10**6, 10**8)
    out = []
    for n in range(count):
        sender = codes[n % len(codes)]
        recipient = rng.choice([c for c in codes if c != sender])
        edoc = sample_edoc(sender, [recipient], document_number=first + n, size=8192, rng=rng)
        out.append((sender, signers[sender].sign(schemas.to_element(edoc))))
    return out


def inbound(documents: list[tuple[str, bytes]]) -> list[Inbound]:
    """The documents as the router takes them from the inbound queue."""
    return [
        Inbound(
            tag=n,
            body=body,
            user_id=sender,
            message_id=str(uuid.uuid4()),
            type="edoc",
            content_type="application/xml",
            received_at=utcnow(),
        )
        for n, (sender, body) in enumerate(documents)
    ]


def run(pipeline: Pipeline, documents: list[tuple[str, bytes]], batch: int) -> tuple[float, float]:
    """Route ``documents`` in batches of ``batch``: (wall, CPU) seconds."""
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(documents), batch):
        items, _ = pipeline.handle(inbound(documents[start : start + batch]))
        pipeline.confirm(items)
    return time.perf_counter() - wall, time.process_time() - cpu


def floor(pipeline: Pipeline, documents: list[tuple[str, bytes]]) -> tuple[float, float]:
    """CPU seconds of check() and of signing a receipt, over ``documents``."""
    snapshot = pipeline.registry.current(pipeline.engine)
    messages = inbound(documents)
    start = time.process_time()
    checked = [pipeline.check(message, snapshot) for message in messages]
    checking = time.process_time() - start
    assert all(c.failure is None for c in checked), [c.failure for c in checked][:3]
    start = time.process_time()
    for n, c in enumerate(checked):
        assert c.sender is not None and c.document_id is not None
        pipeline.writer.receipt(
            receipt_id=str(uuid.uuid4()),
            message_id=c.inbound.message_id or "",
            kind="edoc",
            sender=c.sender,
            document_id=c.document_id,
            sha256=c.sha256,
            received_at=c.inbound.received_at,
            audit_seq=n + 1,
            chain_hash=c.sha256,
            delivered=("000.00.00.H41",),
        )
    return checking, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a hub folder left by axis bench --dir")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4, 100])
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--floor", action="store_true", help="check and receipt only")
    args = parser.parse_args()
    logs.configure("json", "warning")
    pipeline = build_pipeline(load(args.folder / "axis.toml"))
    if args.floor:
        checking, signing = floor(pipeline, signed_documents(args.folder, args.docs))
        per = 1e6 / args.docs
        print(f"CPU µs/doc: check {checking * per:.0f}, receipt {signing * per:.0f}")
        return
    print("batch  wall µs/doc  CPU µs/doc")
    for batch in args.batch:
        documents = signed_documents(args.folder, args.docs)
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            run(pipeline, documents, batch)
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
            continue
        wall, cpu = run(pipeline, documents, batch)
        print(f"{batch:>5}  {wall / args.docs * 1e6:>11.0f}  {cpu / args.docs * 1e6:>10.0f}")


if __name__ == "__main__":
    main()
