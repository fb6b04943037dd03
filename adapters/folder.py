"""The folder bridge: an agency's exchange with the hub as files, for a DMS that only does files.

Layout under the root folder (created as needed)::

    outbox/NAME.xml          the DMS drops edocs here (signed, or unsigned: signed here)
    sent/NAME.xml            ... moved here once the hub accepted it (the bytes as sent,
    sent/NAME.receipt.xml        signed), with the hub-signed receipt beside it
    failed/NAME.xml          ... or here once the hub refused it (the file as dropped),
    failed/NAME.rejection.xml    with the hub-signed rejection (NAME.error.txt instead
                                 when it could not even be sent: not XML, say)
    inbox/<receipt-id>.xml   documents delivered to the agency, each with
    inbox/<receipt-id>.json      its sidecar: sender, received_at, receipt_id, ...
    status/<receipt-id>.xml  statuses other agencies sent on this agency's documents
    status/<receipt-id>.json
    invalid/<receipt-id>.*   deliveries that failed the end-to-end signature check
    answers/<receipt-id>.*   hub answers that belong to no outbox file (kept, not lost)
    .axis-bridge/            the bridge's journal and state: do not touch

Only complete files are taken: the DMS writes ``NAME.xml.tmp`` (or any name not
ending in ``.xml``) and renames it to ``NAME.xml`` when done. A DMS that cannot
rename gets the same from ``settle``: a file is taken only once it has not changed
for that many seconds. In ``inbox/`` and ``status/`` the ``.json`` sidecar is
written before the ``.xml``, each atomically (temporary file, fsync, rename), so a
DMS that sees ``<receipt-id>.xml`` finds its sidecar there.

Crash safety: before a file is published, the exact bytes (signed) and the message
id chosen for it are written to ``.axis-bridge/journal/``. A file leaves ``outbox/``
only after the hub's answer is written beside it. A bridge restarted after a crash
publishes the journalled bytes again with the same message id; the hub answers such
a retry with the original receipt and delivers nothing twice. A delivery is written
before it is acknowledged to the broker, and one whose ``<receipt-id>.xml`` exists
already is not written again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from adapters.client import AgencyClient, Delivery, Receipt, SendResult
from adapters.errors import AnswerInvalid, Rejected
from axis.rejections import Rejection, SchemaInvalid

log = structlog.get_logger("adapters.folder")

__all__ = ["FolderBridge"]

OUTBOX, SENT, FAILED = "outbox", "sent", "failed"
INBOX, STATUS, INVALID, ANSWERS = "inbox", "status", "invalid", "answers"
STATE = ".axis-bridge"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see all of it or nothing, durably."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_id(receipt_id: str | None, body: bytes) -> str:
    # Receipt ids are UUIDs from the hub; anything else must not become a path.
    if receipt_id and _SAFE_NAME.fullmatch(receipt_id):
        return receipt_id
    return f"unknown-{_sha256(body)[:32]}"


@dataclass(frozen=True)
class JournalEntry:
    """What was recorded for an outbox file before it was published."""

    name: str
    message_id: str
    source_sha256: str
    body: bytes


class FolderBridge:
    """Moves files between a folder tree and the hub through an :class:`AgencyClient`.

    ``settle``: seconds an outbox file must stay unchanged before it is taken (0
    when the DMS renames complete files into place). ``answer_timeout``: how long
    :meth:`run_once` waits for the hub's answers.
    """

    def __init__(
        self,
        client: AgencyClient,
        root: str | os.PathLike[str],
        *,
        settle: float = 2.0,
        answer_timeout: float = 120.0,
    ) -> None:
        self.client = client
        self.root = Path(root)
        self.settle = settle
        self.answer_timeout = answer_timeout
        self.journal_dir = self.root / STATE / "journal"
        for name in (OUTBOX, SENT, FAILED, INBOX, STATUS, INVALID, ANSWERS):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self.journal_dir.mkdir(parents=True, exist_ok=True)
        self._pending: dict[str, tuple[str, SendResult]] = {}
        self._stopping = False

    def stop(self) -> None:
        """Ask :meth:`run` to return after the file it is handling (e.g. from a signal)."""
        self._stopping = True

    def run(self, *, interval: float = 2.0) -> None:
        """Exchange files until :meth:`stop`: scan the outbox, then take deliveries, repeat."""
        while not self._stopping:
            self.send_outbox()
            self.receive(interval)
            self.collect()

    def run_once(self, *, idle: float = 1.0) -> bool:
        """Send what is in the outbox, wait for the answers, take what is in the inbox.

        Returns False when some answer did not come within ``answer_timeout`` (the
        file stays in the outbox, journalled; the next run re-sends it as a retry).
        """
        self.send_outbox()
        deadline = time.monotonic() + self.answer_timeout
        while self._pending and time.monotonic() < deadline:
            self.receive(0.3)
            self.collect()
        self.receive(idle)
        self.collect()
        complete = not self._pending
        # Answers to the automatic statuses, so they do not turn up in answers/ later.
        self.client.flush(max(0.0, min(5.0, deadline - time.monotonic())))
        return complete

    def send_outbox(self) -> int:
        """Publish every complete outbox file not already in flight; return how many."""
        sent = 0
        now = time.time()
        for path in sorted((self.root / OUTBOX).glob("*.xml")):
            name = path.name
            if name.startswith(".") or any(n == name for n, _ in self._pending.values()):
                continue
            try:
                if now - path.stat().st_mtime < self.settle:
                    continue
                source = path.read_bytes()
            except FileNotFoundError:
                continue  # the DMS took it back
            entry = self._journal(name)
            if entry is None or entry.source_sha256 != _sha256(source):
                try:
                    _, body, _ = self.client.prepare(source)
                except (Rejection, ValueError) as exc:
                    self._fail_locally(name, source, exc)
                    continue
                entry = self._record(name, _sha256(source), body)
            result = self.client.send(entry.body, wait=False, message_id=entry.message_id)
            self._after_publish(name, entry.message_id)
            self._pending[entry.message_id] = (name, result)
            log.info("bridge.published", file=name, message_id=entry.message_id)
            sent += 1
        return sent

    def _after_publish(self, name: str, message_id: str) -> None:
        """Called once the broker confirmed a file; the crash tests stop the process here."""

    def collect(self) -> None:
        """Move every outbox file whose answer arrived to ``sent/`` or ``failed/``."""
        for message_id, (name, result) in list(self._pending.items()):
            if result.done:
                del self._pending[message_id]
                self._complete(name, result.body, result.receipt, result.rejected, result.error)

    def receive(self, timeout: float) -> int:
        """Write deliveries to the folders for ``timeout`` seconds at most; return how many."""
        count = 0
        start = time.monotonic()
        for delivery in self.client.receive(timeout=timeout):
            self._take(delivery)
            # Written (or deliberately skipped): only now may the broker forget it.
            delivery.ack()
            count += 1
            if self._stopping or time.monotonic() - start >= timeout:
                break
        return count

    def _take(self, delivery: Delivery) -> None:
        if not delivery.verified:
            folder = INVALID
        elif delivery.kind in ("receipt", "rejection"):
            # Answers the client matched to no send of this process: the files they
            # belong to (if any) are re-sent from the journal and answered again.
            folder = ANSWERS
        else:
            folder = INBOX if delivery.kind == "edoc" else STATUS
        file_id = _file_id(delivery.receipt_id, delivery.body)
        if folder == ANSWERS:
            file_id = f"{file_id}.{delivery.kind}"
        target = self.root / folder / f"{file_id}.xml"
        if target.exists():
            log.info("bridge.delivery_exists", file=str(target), receipt_id=delivery.receipt_id)
            return
        write_atomic(target.with_suffix(".json"), _sidecar(delivery))
        write_atomic(target, delivery.body)
        log.info("bridge.delivery_written", file=str(target), kind=delivery.kind)

    def _complete(
        self,
        name: str,
        body: bytes,
        receipt: Receipt | None,
        refusal: Rejected | None,
        error: Exception | None = None,
    ) -> None:
        source_path = self.root / OUTBOX / name
        stem = name[: -len(".xml")]
        if receipt is not None:
            target = self._free_name(SENT, name, body, receipt.message_id)
            target_stem = target.name[: -len(".xml")]
            write_atomic(target.with_name(f"{target_stem}.receipt.xml"), receipt.body)
            write_atomic(target, body)
            log.info("bridge.sent", file=name, receipt_id=receipt.receipt_id)
        else:
            try:
                source = source_path.read_bytes()
            except FileNotFoundError:
                source = body
            target = self._free_name(FAILED, name, source, uuid.uuid4().hex[:8])
            target_stem = target.name[: -len(".xml")]
            if refusal is not None:
                write_atomic(target.with_name(f"{target_stem}.rejection.xml"), refusal.body)
                log.warning("bridge.rejected", file=name, code=refusal.code, reason=refusal.reason)
            else:
                reason = str(error or AnswerInvalid("", SchemaInvalid("no answer")))
                write_atomic(target.with_name(f"{target_stem}.error.txt"), reason.encode())
                log.error("bridge.failed", file=name, error=reason)
            write_atomic(target, source)
        with contextlib.suppress(FileNotFoundError):
            source_path.unlink()
        self._forget(stem + ".xml")
        _fsync_dir(source_path.parent)

    def _fail_locally(self, name: str, source: bytes, error: Exception) -> None:
        target = self._free_name(FAILED, name, source, uuid.uuid4().hex[:8])
        write_atomic(
            target.with_name(f"{target.name[: -len('.xml')]}.error.txt"), str(error).encode()
        )
        write_atomic(target, source)
        (self.root / OUTBOX / name).unlink(missing_ok=True)
        log.warning("bridge.unsendable", file=name, error=str(error))

    def _free_name(self, folder: str, name: str, data: bytes, suffix: str) -> Path:
        # A DMS may reuse a file name; never overwrite a different earlier file.
        target = self.root / folder / name
        if target.exists() and target.read_bytes() != data:
            target = target.with_name(f"{name[: -len('.xml')]}.{suffix}.xml")
        return target

    def _journal(self, name: str) -> JournalEntry | None:
        meta_path = self.journal_dir / f"{name}.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            body = (self.journal_dir / f"{name}.body").read_bytes()
        except (FileNotFoundError, ValueError):
            return None
        if _sha256(body) != meta.get("body_sha256"):
            return None
        return JournalEntry(meta["name"], meta["message_id"], meta["source_sha256"], body)

    def _record(self, name: str, source_sha256: str, body: bytes) -> JournalEntry:
        entry = JournalEntry(name, str(uuid.uuid4()), source_sha256, body)
        write_atomic(self.journal_dir / f"{name}.body", body)
        # The .json commits the entry: without it the .body is ignored.
        meta = {
            "name": name,
            "message_id": entry.message_id,
            "source_sha256": source_sha256,
            "body_sha256": _sha256(body),
        }
        write_atomic(self.journal_dir / f"{name}.json", json.dumps(meta).encode())
        return entry

    def _forget(self, name: str) -> None:
        for suffix in (".json", ".body"):
            (self.journal_dir / f"{name}{suffix}").unlink(missing_ok=True)


def _sidecar(delivery: Delivery) -> bytes:
    data: dict[str, Any] = {
        "receipt_id": delivery.receipt_id,
        "kind": delivery.kind,
        "sender": delivery.sender,
        "received_at": delivery.received_at.isoformat() if delivery.received_at else None,
        "message_id": delivery.message_id,
        "verified": delivery.verified,
    }
    if delivery.correlation_id:
        data["correlation_id"] = delivery.correlation_id
    if delivery.signer is not None:
        data["signer"] = delivery.signer.subject_code
        data["signer_fingerprint"] = delivery.signer.fingerprint
    if delivery.verified:
        document = delivery.document
        data["document_id"] = getattr(document, "document_id", None)
        if delivery.kind == "status":
            data["status_code"] = delivery.status.code.value
    else:
        data["error"] = str(delivery.error)
        data["error_code"] = getattr(delivery.error, "code", None)
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
