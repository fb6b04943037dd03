"""The check stage of the router alone: parse → validate → read header → verify, per document.

Self-contained (its own PKI, no database or broker), so two checkouts can be compared
in one run, alternating, by putting each first on ``PYTHONPATH``::

    for tree in /tmp/axis-before /work/main /tmp/axis-before /work/main; do
        PYTHONPATH=$tree .venv/bin/python benchmarks/bench_check.py --docs 2000
    done

Prints CPU microseconds per document (process CPU time, the steadier figure on a
shared machine) for documents of about ``--size`` bytes, each tree signing its own
documents in its own wire format.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime

import schemas
from schemas.samples import sample_edoc
from schemas.xml import parse
from signing import Signer, TrustStore, Verifier
from signing.pki import make_ca, make_leaf


def main() -> None:
    """Sign ``--docs`` documents (not timed), then time checking them ``--rounds`` times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    ca = make_ca("Bench CA")
    leaf = make_leaf("000.00.00.G22", ca)
    signer = Signer(leaf.key, leaf.certificate)
    rng = random.Random(7)
    bodies = [
        signer.sign(
            schemas.to_element(
                sample_edoc(
                    "000.00.00.G22",
                    ["000.00.00.H41", "000.00.00.H29"],
                    document_number=n,
                    size=args.size,
                    rng=rng,
                )
            )
        )
        for n in range(1, args.docs + 1)
    ]
    verifier = Verifier(TrustStore([ca.certificate]))
    now = datetime.now(UTC)
    best = float("inf")
    for _ in range(args.rounds):
        started = time.process_time()
        for body in bodies:
            root = parse(body)
            schemas.validate(root)
            schemas.read_header(root)
            verifier.verify(root, at=now)
        best = min(best, time.process_time() - started)
    print(f"{schemas.__file__}: {best / len(bodies) * 1e6:.1f} µs CPU per document")


if __name__ == "__main__":
    main()
