"""Signature verification and signing throughput: ours against signxml.

Run::

    .venv/bin/python benchmarks/bench_signing.py [--seconds N]

The router verifies every inbound document (target ~2,000 documents/s on two
cores), so what matters is the per-document cost of ``Verifier.verify`` from the
body's bytes, with the signer's chain already cached: parse, canonicalize,
digest, one public-key operation, a validity and CRL re-check. signxml is timed
on the same bytes, once with the signer's certificate pinned (``x509_cert``, its
cheapest mode) and once building the chain to the CA (``ca_pem_file``, what ours
does). Documents are realistic edocs from ``schemas.samples`` (RSA-2048 signer,
as the government CA issues).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import signxml
from lxml import etree

from signing import Signer, TrustStore, Verifier, pki

NOW = datetime.now(UTC)


def edoc(size: int) -> bytes:
    """An unsigned realistic edoc of about ``size`` bytes."""
    from schemas import to_bytes
    from schemas.samples import sample_edoc

    document = sample_edoc(
        "000.00.00.G22", ["000.00.00.H41"], size=size, rng=random.Random(size), now=NOW
    )
    return to_bytes(document)


def per_call(functions: dict[str, Callable[[], object]], seconds: float) -> dict[str, float]:
    """Median µs per call of each function, over rounds that take turns.

    Other processes share the machine; alternating short bursts exposes every
    function to the same load, so the ratios stay meaningful.
    """
    for function in functions.values():
        function()  # warm caches and lazy imports
    rounds = 15
    samples: dict[str, list[float]] = {name: [] for name in functions}
    budget = seconds / rounds
    for _ in range(rounds):
        for name, function in functions.items():
            calls, start = 0, time.perf_counter()
            while True:
                function()
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= budget:
                    break
            samples[name].append(elapsed / calls * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    """Print the verify table (ours vs signxml) and the signing cost, one run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    args = parser.parse_args(argv)

    ca = pki.make_ca("Bench CA")
    rsa_leaf = pki.make_leaf("000.00.00.G22", ca, algo="rsa")
    ec_leaf = pki.make_leaf("000.00.00.G22", ca, algo="ec")
    trust = TrustStore([ca.certificate])
    cert_pem = pki.cert_pem(rsa_leaf.certificate).decode()
    signxml_config = signxml.SignatureConfiguration(
        signature_methods=frozenset({signxml.SignatureMethod.RSA_SHA256}),
        digest_algorithms=frozenset({signxml.DigestAlgorithm.SHA256}),
    )

    with tempfile.TemporaryDirectory() as tmp:
        ca_file = Path(tmp) / "ca.pem"
        ca_file.write_bytes(pki.cert_pem(ca.certificate))
        documents = {"8 KB": edoc(8 * 1024), "1 MB": edoc(1024 * 1024)}
        rsa_signer = Signer(rsa_leaf.key, rsa_leaf.certificate)
        ec_signer = Signer(ec_leaf.key, ec_leaf.certificate)

        print(f"verify, RSA-2048 signer, median µs per document over {args.seconds:g} s per cell")
        header = (
            f"{'document':>9} {'bytes':>9} {'ours':>9} {'signxml':>9} {'ratio':>7}"
            f" {'signxml+CA':>11} {'ratio':>7} {'ours/s':>8}"
        )
        print(header)
        print("-" * len(header))
        for label, unsigned in documents.items():
            signed = rsa_signer.sign(unsigned)
            verifier = Verifier(trust)
            times = per_call(
                {
                    "ours": lambda s=signed, v=verifier: v.verify(s, at=NOW),
                    "signxml": lambda s=signed: signxml.XMLVerifier().verify(
                        s, x509_cert=cert_pem, expect_config=signxml_config
                    ),
                    "signxml+CA": lambda s=signed: signxml.XMLVerifier().verify(
                        s, ca_pem_file=str(ca_file), expect_config=signxml_config
                    ),
                },
                args.seconds * 3,
            )
            ours, theirs, theirs_ca = times["ours"], times["signxml"], times["signxml+CA"]
            print(
                f"{label:>9} {len(signed):>9} {ours:>9.1f} {theirs:>9.1f} {ours / theirs:>7.2f}"
                f" {theirs_ca:>11.1f} {ours / theirs_ca:>7.2f} {1e6 / ours:>8.0f}"
            )

        print()
        print("sign with ours (µs per document, reused Signer)")
        header = f"{'document':>9} {'RSA-2048':>9} {'EC P-256':>9}"
        print(header)
        print("-" * len(header))
        for label, unsigned in documents.items():
            root = etree.fromstring(unsigned)
            costs = per_call(
                {"rsa": lambda r=root: rsa_signer.sign(r), "ec": lambda r=root: ec_signer.sign(r)},
                args.seconds * 2,
            )
            rsa_cost, ec_cost = costs["rsa"], costs["ec"]
            print(f"{label:>9} {rsa_cost:>9.1f} {ec_cost:>9.1f}")

        signed_8k = rsa_signer.sign(documents["8 KB"])
        cold = per_call({"cold": lambda: Verifier(trust).verify(signed_8k, at=NOW)}, args.seconds)[
            "cold"
        ]
        print()
        print(f"8 KB verify with a cold Verifier (certificate parsed, chain built): {cold:.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
