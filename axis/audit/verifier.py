"""Checking the audit trail: the whole chain, and the hub's signatures on its heads."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from axis.audit import store
from axis.audit.chain import format_time
from axis.receipts import read_chain_head
from axis.rejections import Rejection
from schemas.xml import parse
from signing import Verifier


def head_checker(verifier: Verifier) -> Callable[[sa.Row], str | None]:
    """A ``check_head`` for :func:`axis.audit.store.verify` that checks the hub's signature.

    The signature is checked at the moment the head says it was signed, and what it
    states (seq, hash, time) must be what the database row says.
    """

    def check(row: sa.Row) -> str | None:
        try:
            root = parse(row.body)
            verifier.verify(root, at=row.signed_at)
            seq, chain_hash, signed_at = read_chain_head(root)
        except (Rejection, ValueError) as exc:
            return str(exc)
        if (seq, chain_hash, signed_at) != (row.seq, row.hash, format_time(row.signed_at)):
            return "the signed statement differs from the stored head"
        return None

    return check


@dataclass(frozen=True)
class Verification:
    """A chain check with how long it took."""

    report: store.VerifyReport
    seconds: float

    @property
    def rate(self) -> float:
        """Events checked per second."""
        return self.report.checked / self.seconds if self.seconds > 0 else 0.0


def verify_trail(
    conn: Connection, verifier: Verifier, *, workers: int | None = None
) -> Verification:
    """Recompute the chain and check every signed head; time it.

    ``workers``: connections to split a long chain over (see :func:`axis.audit.store.verify`).
    """
    started = time.perf_counter()
    report = store.verify(conn, check_head=head_checker(verifier), workers=workers)
    return Verification(report, time.perf_counter() - started)
