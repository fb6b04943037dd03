"""Evidence bundles: one document's proof, exported from the hub and checked offline.

A bundle is a zip that lets anyone holding the trust anchor (the CA's certificate)
check, without the hub's database, broker or configuration, that:

- the document's original bytes were signed by its sender, whose certificate chains
  to the anchor;
- the hub received exactly those bytes (its signed receipt states their SHA-256,
  the time, and the audit sequence number and chain hash of the RECEIVED event);
- the document's audit events (RECEIVED, DELIVERED to each recipient, the
  recipients' statuses with their own signed bytes and receipts, revoke / update /
  replace) are links of the hub's hash chain, up to a chain head the hub signed.

Layout (every name but ``manifest.json`` is listed in it with its SHA-256)::

    manifest.json            format, version, DocumentId, SHA-256 of every other file
    README.txt               how to check the bundle by hand
    document.xml             the original signed bytes, as the sender published them
    receipt.xml              the hub's signed AxisReceipt for them
    events.json              the document's audit events in full, and where the run starts
    chain-links.bin          the 32-byte digest of every event from the first document
                             event to the signed head, in sequence order
    chain-head.xml           the hub's signed AxisChainHead at the end of the run
    hub.pem                  the hub's certificate(s) that signed the above
    messages/<receipt id>.xml          statuses and revoke/update/replace documents about it
    messages/<receipt id>.receipt.xml  the hub's receipts for them
    messages/<receipt id>.rejection.xml  the hub's rejections of messages about it

The events of a document are scattered along the chain among other agencies'
events. Those are in the bundle only as their digest (SHA-256 of their canonical
form), which is all that recomputing ``hash_n = SHA-256(hash_{n-1} ‖ digest_n)``
needs and reveals nothing of them. The document's own events are given in full;
their recomputed digests must equal the links at their places.

What a bundle does not prove: that the hub recorded no *other* event about the
document. The other links are opaque by design, so completeness rests on the
agencies' own receipts and statuses (a recipient holds its delivery; a sender
holds the receipt listing every recipient).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

import schemas
from axis import record
from axis.archive import Archive, ArchiveError
from axis.audit import store
from axis.audit.chain import GENESIS, Link, digest, format_time, link_hash
from axis.models import ChainHead
from axis.models import Document as DocumentRow
from axis.receipts import ReceiptWriter, read_chain_head
from axis.rejections import Rejection
from schemas.xml import parse
from signing import TrustStore, VerifiedSignature, Verifier
from signing.profile import DS_NS

FORMAT = "axis-evidence-bundle"
VERSION = 1
MANIFEST = "manifest.json"
README = "README.txt"
DOCUMENT = "document.xml"
RECEIPT = "receipt.xml"
EVENTS = "events.json"
LINKS = "chain-links.bin"
HEAD = "chain-head.xml"
HUB_CERTIFICATES = "hub.pem"
MESSAGES = "messages/"
REQUIRED = (README, DOCUMENT, RECEIPT, EVENTS, LINKS, HEAD, HUB_CERTIFICATES)

MAX_FILE_BYTES = 1 << 30
"""The largest file a checker reads out of a bundle (a zip can claim any size)."""
MAX_FILES = 100_000
MAX_XML_BYTES = 256 * 1024 * 1024
DEFAULT_HUB_NAME = "axis-hub"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_MESSAGE_NAME = re.compile(r"messages/([0-9A-Za-z.:_-]{1,200})\.(xml|receipt\.xml|rejection\.xml)")
_EVENT_KEYS = store.COLUMNS
"""An event in ``events.json`` holds its audit_events columns."""
_BUSINESS = {"REVOKED": 1, "UPDATED": 2, "REPLACED": 3}


class BundleError(Exception):
    """The bundle does not check; ``file`` names the part that failed."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


class ExportError(Exception):
    """A bundle cannot be exported for this document (the message says why)."""


def manifest_bytes(document_id: str, files: Mapping[str, bytes]) -> bytes:
    """The canonical ``manifest.json`` for ``files``: sorted keys, two-space indent, newline.

    A checker rejects any other spelling, so no byte of the manifest goes unchecked.
    """
    return _canonical_manifest(
        {
            "format": FORMAT,
            "version": VERSION,
            "document_id": document_id,
            "files": {name: hashlib.sha256(body).hexdigest() for name, body in files.items()},
        }
    )


def write_zip(files: Mapping[str, bytes], out: Any, *, when: datetime) -> None:
    """Write ``files`` (manifest included) as a zip to a path or binary file object."""
    stamp = when.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in [MANIFEST, *sorted(n for n in files if n != MANIFEST)]:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name])


def read_zip(data: bytes) -> dict[str, bytes]:
    """The files of a bundle zip, by name; :class:`BundleError` for anything unreadable."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > MAX_FILES:
                raise BundleError("bundle", f"{len(infos)} files; at most {MAX_FILES}")
            files: dict[str, bytes] = {}
            for info in infos:
                if info.is_dir():
                    continue
                if info.filename in files:
                    raise BundleError("bundle", f"{info.filename} appears twice")
                if info.file_size > MAX_FILE_BYTES:
                    raise BundleError(info.filename, f"{info.file_size} bytes is too large")
                files[info.filename] = archive.read(info)
            return files
    except BundleError:
        raise
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        ValueError,
        NotImplementedError,
        RuntimeError,
        struct.error,
        KeyError,
        IndexError,
        OverflowError,
    ) as exc:
        raise BundleError("bundle", f"not a readable zip file ({exc})") from None


@dataclass(frozen=True)
class Delivery:
    """A recipient of the document and when the broker confirmed its delivery."""

    recipient: str
    outcome: str
    """``delivered`` or ``suspended``, as the receipt states it."""
    delivered_at: datetime | None
    seq: int | None


@dataclass(frozen=True)
class StatusFact:
    """A recipient's signed status about the document."""

    sender: str
    code: str
    received_at: datetime
    stated_at: datetime
    description: str | None
    receipt_id: str
    seq: int


@dataclass(frozen=True)
class Evidence:
    """What a bundle proves, once every check has passed."""

    document_id: str
    subject: str
    sender: str
    signer_subject: str
    signer_fingerprint: str
    sha256: str
    size: int
    received_at: datetime
    receipt_id: str
    audit_seq: int
    deliveries: tuple[Delivery, ...]
    statuses: tuple[StatusFact, ...]
    events: tuple[Link, ...]
    chain_first: int
    head_seq: int
    head_hash: str
    head_signed_at: datetime
    hub_subject: str
    hub_fingerprint: str
    anchor_subject: str
    notes: tuple[str, ...] = field(default=())


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def fingerprint(certificate: x509.Certificate) -> str:
    """Hex SHA-256 of a certificate's DER (how the registry and the SDK name one)."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


class _Checker:
    """One bundle's checks, in the order that gives the clearest first failure."""

    def __init__(
        self,
        files: Mapping[str, bytes],
        trust: TrustStore,
        *,
        hub_name: str,
        hub_fingerprint: str | None,
    ) -> None:
        self.files = files
        self.trust = trust
        # A bundle holds what the hub accepted, under the legacy profile too while its
        # policy allowed it: the receipt and the event say which profile verified.
        self.verifier = Verifier(trust, legacy_until=date.max)
        self.hub_name = hub_name
        self.hub_fingerprint = hub_fingerprint
        self.hub_certificates: dict[str, x509.Certificate] = {}
        self.hub_signers: set[str] = set()

    def run(self) -> Evidence:
        document_id = self.manifest()
        self.hub_pem()
        head_seq, head_hash, head_signed_at = self.head()
        first, previous, events = self.events(document_id, head_seq)
        hashes = self.chain(first, previous, events, head_seq, head_hash)
        return self.story(document_id, events, hashes, first, head_seq, head_hash, head_signed_at)

    # The container: every file listed with its hash, and nothing else.

    def manifest(self) -> str:
        raw = self.files.get(MANIFEST)
        if raw is None:
            raise BundleError(MANIFEST, "missing: this is not an Axis evidence bundle")
        try:
            manifest = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise BundleError(MANIFEST, f"not JSON ({exc})") from None
        if not isinstance(manifest, dict) or set(manifest) != {
            "format",
            "version",
            "document_id",
            "files",
        }:
            raise BundleError(MANIFEST, "must hold exactly format, version, document_id, files")
        if manifest["format"] != FORMAT:
            raise BundleError(MANIFEST, f"format is {manifest['format']!r}, not {FORMAT!r}")
        if manifest["version"] != VERSION or isinstance(manifest["version"], bool):
            raise BundleError(MANIFEST, f"version {manifest['version']!r} is not supported")
        document_id, listed = manifest["document_id"], manifest["files"]
        if not isinstance(document_id, str) or not isinstance(listed, dict):
            raise BundleError(MANIFEST, "document_id must be text and files an object")
        for name, value in listed.items():
            if not isinstance(value, str) or not _HEX64.fullmatch(value):
                raise BundleError(MANIFEST, f"the SHA-256 of {name} is not 64 lowercase hex")
        if raw != _canonical_manifest(manifest):
            raise BundleError(MANIFEST, "not in canonical form (changed after export?)")
        present = set(self.files) - {MANIFEST}
        if missing := sorted(set(listed) - present):
            raise BundleError(missing[0], "listed in the manifest but missing from the bundle")
        if extra := sorted(present - set(listed)):
            raise BundleError(extra[0], "in the bundle but not listed in the manifest")
        for name in sorted(listed):
            if hashlib.sha256(self.files[name]).hexdigest() != listed[name]:
                raise BundleError(name, "its SHA-256 differs from the manifest's (file changed)")
        for name in REQUIRED:
            if name not in listed:
                raise BundleError(name, "missing: every bundle has one")
        for name in listed:
            if name not in REQUIRED and not _MESSAGE_NAME.fullmatch(name):
                raise BundleError(name, "not a file an evidence bundle holds")
        return document_id

    # The hub: its certificates, and every file it signed.

    def hub_pem(self) -> None:
        try:
            certificates = x509.load_pem_x509_certificates(self.files[HUB_CERTIFICATES])
        except ValueError as exc:
            raise BundleError(HUB_CERTIFICATES, f"not PEM certificates ({exc})") from None
        self.hub_certificates = {fingerprint(c): c for c in certificates}

    def hub_signed(self, name: str, root: etree._Element, at: datetime) -> VerifiedSignature:
        """Check the hub's signature on ``name`` at ``at``: a hub.pem certificate, chained
        to the trust anchor, named as the hub (or the pinned certificate)."""
        try:
            signer = self.verifier.verify(root, at=at)
        except (Rejection, ValueError, etree.LxmlError) as exc:
            raise BundleError(name, f"the hub's signature does not verify: {exc}") from None
        if signer.fingerprint not in self.hub_certificates:
            raise BundleError(name, f"signed by a certificate not in {HUB_CERTIFICATES}")
        if self.hub_fingerprint is not None:
            if signer.fingerprint != self.hub_fingerprint:
                raise BundleError(name, "not signed by the pinned hub certificate")
        elif signer.subject_code != self.hub_name:
            raise BundleError(
                name, f"signed by {signer.subject_code!r}, not the hub ({self.hub_name!r})"
            )
        self.hub_signers.add(signer.fingerprint)
        return signer

    def xml(self, name: str) -> etree._Element:
        try:
            return parse(self.files[name], max_bytes=MAX_XML_BYTES)
        except Rejection as exc:
            raise BundleError(name, f"not well-formed XML: {exc}") from None

    def head(self) -> tuple[int, str, datetime]:
        root = self.xml(HEAD)
        try:
            seq, chain_hash, signed_at_text = read_chain_head(root)
            signed_at = _time(signed_at_text)
        except ValueError as exc:
            raise BundleError(HEAD, f"not a readable AxisChainHead ({exc})") from None
        if seq < 1 or not _HEX64.fullmatch(chain_hash):
            raise BundleError(HEAD, "its Seq or ChainHash is not valid")
        self.hub_signed(HEAD, root, signed_at)
        return seq, chain_hash, signed_at

    # The audit events and the chain links.

    def events(self, document_id: str, head_seq: int) -> tuple[int, str, list[Link]]:
        try:
            data = json.loads(self.files[EVENTS].decode("utf-8"))
        except ValueError as exc:
            raise BundleError(EVENTS, f"not JSON ({exc})") from None
        if not isinstance(data, dict) or set(data) != {
            "document_id",
            "first_seq",
            "previous_hash",
            "last_seq",
            "events",
        }:
            raise BundleError(
                EVENTS, "must hold exactly document_id, first_seq, previous_hash, last_seq, events"
            )
        if data["document_id"] != document_id:
            raise BundleError(EVENTS, "names another document than the manifest")
        first, last, previous = data["first_seq"], data["last_seq"], data["previous_hash"]
        if not (_is_int(first) and _is_int(last) and 1 <= first <= last):
            raise BundleError(EVENTS, "first_seq and last_seq must be whole numbers, first ≤ last")
        if last != head_seq:
            raise BundleError(EVENTS, f"the run ends at seq {last}, not at the signed head's")
        if not isinstance(previous, str) or not _HEX64.fullmatch(previous):
            raise BundleError(EVENTS, "previous_hash is not 64 lowercase hex")
        if first == 1 and previous != GENESIS:
            raise BundleError(EVENTS, "a run from seq 1 starts from the genesis hash")
        raw_events = data["events"]
        if not isinstance(raw_events, list) or not raw_events:
            raise BundleError(EVENTS, "holds no event")
        links = self.files[LINKS]
        if len(links) != 32 * (last - first + 1):
            raise BundleError(
                LINKS, f"{len(links)} bytes; a run of {last - first + 1} links is 32 bytes each"
            )
        events: list[Link] = []
        for raw in raw_events:
            event = _read_event(raw)
            if events and event.seq <= events[-1].seq:
                raise BundleError(EVENTS, f"event #{event.seq} is out of order")
            if not first <= event.seq <= last:
                raise BundleError(EVENTS, f"event #{event.seq} lies outside the run of links")
            if event.document_id != document_id:
                raise BundleError(EVENTS, f"event #{event.seq} is about another document")
            offset = 32 * (event.seq - first)
            if _event_digest(event) != links[offset : offset + 32]:
                raise BundleError(
                    EVENTS,
                    f"event #{event.seq} does not match the chain link at its place "
                    "(the event or the link was changed)",
                )
            events.append(event)
        if events[0].seq != first:
            raise BundleError(EVENTS, "the run of links must start at the first event")
        return first, previous, events

    def chain(
        self, first: int, previous: str, events: Sequence[Link], head_seq: int, head_hash: str
    ) -> dict[int, str]:
        """Recompute the chain over every link; return the hash at each recomputed seq."""
        links = self.files[LINKS]
        wanted = {event.seq for event in events}
        hashes: dict[int, str] = {}
        current = bytes.fromhex(previous)
        for index in range(head_seq - first + 1):
            current = hashlib.sha256(current + links[32 * index : 32 * index + 32]).digest()
            seq = first + index
            if seq in wanted:
                hashes[seq] = current.hex()
        if current.hex() != head_hash:
            raise BundleError(
                LINKS, "the chain recomputed from the links does not reach the signed head's hash"
            )
        for event in events:
            if hashes[event.seq] != event.hash:
                raise BundleError(EVENTS, f"event #{event.seq} states a hash the chain does not")
        self.recomputed = hashes
        self.links_first = first
        self.previous = previous
        return hashes

    def hash_at(self, seq: int) -> str | None:
        """The recomputed chain hash at ``seq`` if it lies in the run (events' or any)."""
        if seq in self.recomputed:
            return self.recomputed[seq]
        links = self.files[LINKS]
        if not 0 < 32 * (seq - self.links_first + 1) <= len(links):
            return None
        current = bytes.fromhex(self.previous)
        for index in range(seq - self.links_first + 1):
            current = hashlib.sha256(current + links[32 * index : 32 * index + 32]).digest()
        return current.hex()

    # The documents, receipts and statuses, against the events.

    def story(
        self,
        document_id: str,
        events: Sequence[Link],
        hashes: Mapping[int, str],
        first: int,
        head_seq: int,
        head_hash: str,
        head_signed_at: datetime,
    ) -> Evidence:
        received = [e for e in events if e.kind == "RECEIVED"]
        # Later arrivals with the same DocumentId are actions repeating it (the national
        # SDK's revoke repeats its original's header): each must be one of the actions.
        actions = {e.receipt_id for e in events if e.kind in _BUSINESS}
        if not received or any(e.receipt_id not in actions for e in received[1:]):
            raise BundleError(EVENTS, f"{len(received)} RECEIVED events; the document has one")
        arrival = received[0]
        detail = _detail(arrival)
        receipt = self.receipt(RECEIPT, arrival, "edoc")
        body = self.files[DOCUMENT]
        sha = hashlib.sha256(body).hexdigest()
        if receipt.sha256 != sha or detail.get("sha256") != sha:
            raise BundleError(
                DOCUMENT,
                "its SHA-256 is not the one the hub's receipt and RECEIVED event state "
                "(these are not the bytes the hub received)",
            )
        header, signer = self.signed_document(DOCUMENT, receipt.received_at, "edoc")
        # Receipts before the legacy profile existed name no profile: strict was the only one.
        if str(signer.profile) != (receipt.signature_profile or "strict"):
            raise BundleError(
                DOCUMENT,
                f"its signature verifies under the {signer.profile} profile, but the hub's "
                f"receipt says {receipt.signature_profile or 'strict'}",
            )
        if header.document_id != document_id:
            raise BundleError(DOCUMENT, f"its DocumentId is {header.document_id!r}")
        if not signer.subject_code == header.sender == receipt.sender == arrival.sender:
            raise BundleError(
                DOCUMENT, "the signer, the From, the receipt and the event name different senders"
            )
        if receipt.document_id != document_id:
            raise BundleError(RECEIPT, "is for another DocumentId")
        stated = [(r.organ_id, r.outcome) for r in receipt.recipients]
        listed, skipped = detail.get("recipients", []), detail.get("skipped", [])
        if not isinstance(listed, list) or not isinstance(skipped, list):
            raise BundleError(EVENTS, "the RECEIVED event's recipients are not lists")
        expected = [(r, "delivered") for r in listed] + [(r, "suspended") for r in skipped]
        if stated != expected:
            raise BundleError(RECEIPT, "lists other recipients than the RECEIVED event")

        used = {DOCUMENT, RECEIPT}
        statuses: list[StatusFact] = []
        notes: list[str] = []
        delivered: dict[str, Link] = {}
        for event in events:
            if event.kind == "DELIVERED" and event.receipt_id == arrival.receipt_id:
                if event.recipient not in dict(stated):
                    raise BundleError(EVENTS, f"event #{event.seq} delivers to a non-recipient")
                delivered.setdefault(event.recipient or "", event)
            elif event.kind == "STATUS":
                statuses.append(self.status(event, arrival, used))
            elif event.kind in _BUSINESS:
                notes.append(self.business(event, arrival, used))
            elif event.kind == "REJECTED":
                notes.append(self.rejected(event, used))
        unused = sorted(n for n in self.files if n.startswith(MESSAGES) and n not in used)
        if unused:
            raise BundleError(unused[0], "belongs to no event of the document")
        hub = self.hub_certificates[sorted(self.hub_signers)[0]]
        anchor = signer.chain[-1]
        deliveries = tuple(
            Delivery(
                code,
                outcome,
                delivered[code].at if code in delivered else None,
                delivered[code].seq if code in delivered else None,
            )
            for code, outcome in stated
        )
        return Evidence(
            document_id=document_id,
            subject=header.subject,
            sender=header.sender,
            signer_subject=signer.certificate.subject.rfc4514_string(),
            signer_fingerprint=signer.fingerprint,
            sha256=sha,
            size=len(body),
            received_at=receipt.received_at,
            receipt_id=receipt.receipt_id,
            audit_seq=receipt.audit_seq,
            deliveries=deliveries,
            statuses=tuple(statuses),
            events=tuple(events),
            chain_first=first,
            head_seq=head_seq,
            head_hash=head_hash,
            head_signed_at=head_signed_at,
            hub_subject=hub.subject.rfc4514_string(),
            hub_fingerprint=fingerprint(hub),
            anchor_subject=anchor.subject.rfc4514_string(),
            notes=tuple(notes),
        )

    def receipt(self, name: str, event: Link, kind: str) -> schemas.AxisReceipt:
        """The hub's receipt in ``name``, checked against the event it answers."""
        root = self.xml(name)
        try:
            receipt = schemas.parse_receipt(root)
        except Rejection as exc:
            raise BundleError(name, f"not a valid AxisReceipt: {exc}") from None
        self.hub_signed(name, root, receipt.received_at)
        if receipt.kind != kind:
            raise BundleError(name, f"is a receipt for a {receipt.kind}, not for a {kind}")
        if receipt.receipt_id != event.receipt_id:
            raise BundleError(name, f"is receipt {receipt.receipt_id}, not event #{event.seq}'s")
        if receipt.audit_seq != event.seq or receipt.received_at != event.at:
            raise BundleError(name, f"states another sequence number or time than #{event.seq}")
        if receipt.chain_hash != event.hash:
            raise BundleError(name, f"states another chain hash than the chain at #{event.seq}")
        if receipt.sender != event.sender:
            raise BundleError(name, f"names another sender than event #{event.seq}")
        return receipt

    def signed_document(self, name: str, at: datetime, kind: str) -> tuple[Any, VerifiedSignature]:
        """An agency's signed message: schema-valid, signature verified at ``at``."""
        root = self.xml(name)
        try:
            found = schemas.validate(root)
            if found != kind:
                raise BundleError(name, f"is a {found}, not a {kind}")
            content = schemas.read_header(root) if kind == "edoc" else schemas.parse_status(root)
        except Rejection as exc:
            raise BundleError(name, f"not a valid {kind}: {exc}") from None
        try:
            signer = self.verifier.verify(root, at=at)
        except (Rejection, ValueError, etree.LxmlError) as exc:
            raise BundleError(name, f"the sender's signature does not verify: {exc}") from None
        return content, signer

    def status(self, event: Link, arrival: Link, used: set[str]) -> StatusFact:
        body_name = f"{MESSAGES}{event.receipt_id}.xml"
        receipt_name = f"{MESSAGES}{event.receipt_id}.receipt.xml"
        for name in (body_name, receipt_name):
            if name not in self.files:
                raise BundleError(name, f"missing: the status of event #{event.seq}")
        used.update((body_name, receipt_name))
        receipt = self.receipt(receipt_name, event, "status")
        sha = hashlib.sha256(self.files[body_name]).hexdigest()
        if sha != receipt.sha256 or sha != _detail(event).get("sha256"):
            raise BundleError(body_name, "its SHA-256 differs from its receipt's or event's")
        status, signer = self.signed_document(body_name, event.at, "status")
        if status.document_id != arrival.document_id:
            raise BundleError(body_name, "is a status about another document")
        if not signer.subject_code == status.sender_id == event.sender:
            raise BundleError(
                body_name, "the signer, the From and the event name different agencies"
            )
        if (
            str(status.code) != event.code
            or status.addressee != event.recipient
            or status.document_sender != arrival.sender
        ):
            raise BundleError(body_name, f"does not say what event #{event.seq} records")
        return StatusFact(
            status.sender_id,
            str(status.code),
            event.at,
            status.timestamp,
            status.description,
            event.receipt_id or "",
            event.seq,
        )

    def business(self, event: Link, arrival: Link, used: set[str]) -> str:
        """A revoke, update or replace: the acting document, signed by the same sender."""
        body_name = f"{MESSAGES}{event.receipt_id}.xml"
        receipt_name = f"{MESSAGES}{event.receipt_id}.receipt.xml"
        for name in (body_name, receipt_name):
            if name not in self.files:
                raise BundleError(name, f"missing: the document of event #{event.seq}")
        used.update((body_name, receipt_name))
        root = self.xml(receipt_name)
        try:
            receipt = schemas.parse_receipt(root)
        except Rejection as exc:
            raise BundleError(receipt_name, f"not a valid AxisReceipt: {exc}") from None
        self.hub_signed(receipt_name, root, receipt.received_at)
        by = _detail(event).get("by")
        if receipt.receipt_id != event.receipt_id or receipt.document_id != by:
            raise BundleError(receipt_name, f"is not the receipt of event #{event.seq}'s document")
        if receipt.received_at != event.at or self.hash_at(receipt.audit_seq) != receipt.chain_hash:
            raise BundleError(receipt_name, "does not agree with the chain")
        if hashlib.sha256(self.files[body_name]).hexdigest() != receipt.sha256:
            raise BundleError(body_name, "its SHA-256 differs from its receipt's")
        header, signer = self.signed_document(body_name, receipt.received_at, "edoc")
        if (
            header.document_id != by
            or arrival.document_id not in header.targets
            or header.business_type != _BUSINESS[event.kind]
            or not signer.subject_code == header.sender == arrival.sender == event.sender
        ):
            raise BundleError(body_name, f"does not do what event #{event.seq} records")
        return f"{event.kind.lower()} by {by}"

    def rejected(self, event: Link, used: set[str]) -> str:
        """A message about the document the hub refused; its rejection, when the bundle has it."""
        name = f"{MESSAGES}{event.receipt_id}.rejection.xml"
        if name in self.files:
            used.add(name)
            root = self.xml(name)
            try:
                rejection = schemas.parse_rejection(root)
            except Rejection as exc:
                raise BundleError(name, f"not a valid AxisRejection: {exc}") from None
            self.hub_signed(name, root, rejection.rejected_at)
            if (
                rejection.receipt_id != event.receipt_id
                or rejection.code != event.code
                or rejection.audit_seq != event.seq
                or rejection.chain_hash != event.hash
                or rejection.rejected_at != event.at
            ):
                raise BundleError(name, f"does not agree with event #{event.seq}")
        return f"{event.sender or 'a message'} refused: {event.code}"


def _canonical_manifest(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_event(raw: object) -> Link:
    if not isinstance(raw, dict) or set(raw) != set(_EVENT_KEYS):
        raise BundleError(EVENTS, f"an event must hold exactly {', '.join(_EVENT_KEYS)}")
    seq = raw["seq"]
    if not _is_int(seq) or seq < 1:
        raise BundleError(EVENTS, "an event's seq must be a whole number from 1")
    texts = [raw[k] for k in ("event", "detail", "hash", "at")]
    optional = [raw[k] for k in ("receipt_id", "document_id", "sender", "recipient", "code")]
    if not all(isinstance(v, str) for v in texts) or not all(
        v is None or isinstance(v, str) for v in optional
    ):
        raise BundleError(EVENTS, f"event #{seq} has a field of the wrong type")
    try:
        at = _time(raw["at"])
    except ValueError:
        raise BundleError(EVENTS, f"event #{seq}'s time is not RFC 3339 UTC") from None
    if format_time(at) != raw["at"]:
        raise BundleError(EVENTS, f"event #{seq}'s time is not in canonical form")
    if not _HEX64.fullmatch(raw["hash"]):
        raise BundleError(EVENTS, f"event #{seq}'s hash is not 64 lowercase hex")
    return Link(
        seq,
        at,
        raw["event"],
        raw["receipt_id"],
        raw["document_id"],
        raw["sender"],
        raw["recipient"],
        raw["code"],
        raw["detail"],
        raw["hash"],
    )


def _event_digest(event: Link) -> bytes:
    return digest(
        event.seq,
        event.at,
        event.kind,
        event.receipt_id,
        event.document_id,
        event.sender,
        event.recipient,
        event.code,
        event.detail,
    )


def _detail(event: Link) -> dict[str, Any]:
    try:
        value = json.loads(event.detail) if event.detail else {}
    except ValueError:
        raise BundleError(EVENTS, f"event #{event.seq}'s detail is not JSON") from None
    if not isinstance(value, dict):
        raise BundleError(EVENTS, f"event #{event.seq}'s detail is not an object")
    return value


def check_files(
    files: Mapping[str, bytes],
    trust: TrustStore,
    *,
    hub_name: str = DEFAULT_HUB_NAME,
    hub_fingerprint: str | None = None,
) -> Evidence:
    """Check a bundle's files (name → bytes) offline; :class:`BundleError` names the failure.

    ``trust`` holds the anchors the sender's and the hub's certificates must chain
    to. The hub is the certificate with CN ``hub_name``, or the one with SHA-256
    fingerprint ``hub_fingerprint`` when given (pinned).
    """
    return _Checker(files, trust, hub_name=hub_name, hub_fingerprint=hub_fingerprint).run()


def check_bundle(
    data: bytes,
    trust: TrustStore,
    *,
    hub_name: str = DEFAULT_HUB_NAME,
    hub_fingerprint: str | None = None,
) -> Evidence:
    """Check a bundle zip's bytes offline; see :func:`check_files`."""
    return check_files(read_zip(data), trust, hub_name=hub_name, hub_fingerprint=hub_fingerprint)


def signing_certificates(bodies: Iterable[bytes]) -> list[x509.Certificate]:
    """The certificates in the ``KeyInfo`` of each signed body (signer first), deduplicated."""
    found: dict[str, x509.Certificate] = {}
    for body in bodies:
        root = parse(body, max_bytes=MAX_XML_BYTES)
        for text in root.iterfind(f".//{{{DS_NS}}}X509Certificate"):
            der = base64.b64decode("".join((text.text or "").split()))
            certificate = x509.load_der_x509_certificate(der)
            found.setdefault(fingerprint(certificate), certificate)
    return list(found.values())


@dataclass(frozen=True)
class Export:
    """A bundle ready to be written, and what went into it."""

    document_id: str
    files: dict[str, bytes]
    """Every file of the bundle, ``manifest.json`` included."""
    events: int
    first_seq: int
    head_seq: int
    head_signed_at: datetime
    signed_head: bool
    """Whether this export had the hub sign a fresh chain head."""
    omitted: int
    """The document's events after the signed head, left out (no head covers them yet)."""


def export_bundle(
    engine: sa.Engine,
    archive: Archive,
    document_id: str,
    *,
    sender: str | None = None,
    writer: ReceiptWriter | None = None,
    write_engine: sa.Engine | None = None,
    now: datetime | None = None,
) -> Export:
    """Gather ``document_id``'s evidence from the hub's database and archive.

    The run of links ends at the first signed chain head at or after the document's
    last event. When there is none yet and ``writer`` (the hub's key) is given, a
    head is signed now, as the router would; without it, the bundle ends at the
    newest signed head and :attr:`Export.omitted` counts the events left out.
    Raises :class:`ExportError` when the document is unknown, the chain is broken
    along the run, or a body or receipt is missing.

    ``engine`` only reads (on SQLite, give a reader: a writer's transactions would
    hold the hub's write lock for the whole read); the head is signed through
    ``write_engine`` (default ``engine``). A DocumentId is unique per sender:
    ``sender`` says whose document (default: the first to be received with the id).
    """
    with engine.connect() as conn:
        trail = store.trail(conn, document_id, sender or store.first_sender(conn, document_id))
        last_seq = trail[-1].seq if trail else 0
        head = _covering_head(conn, last_seq)
    if not trail:
        raise ExportError(f"no audit event names {document_id}")
    if not any(link.kind == "RECEIVED" for link in trail):
        raise ExportError(f"{document_id} was never accepted by the hub (no RECEIVED event)")
    signed = False
    if head is None and writer is not None:
        try:
            with (write_engine or engine).begin() as conn:
                signed = store.sign_head(conn, writer, now or datetime.now(UTC)) is not None
        except sa.exc.IntegrityError:
            pass  # a router signed the same head at the same moment: use that one
    with engine.connect() as conn:
        head = _covering_head(conn, last_seq) or _newest_head(conn)
        if head is None or head.seq < trail[0].seq:
            raise ExportError(
                f"no signed chain head covers {document_id}'s events yet; the router signs "
                "one every router.chain_head_interval_s seconds: export again shortly, or "
                "where the hub's key is readable"
            )
        events = [link for link in trail if link.seq <= head.seq]
        first = events[0].seq
        previous, digests, problem = store.event_digests(conn, first, head.seq)
        if problem is not None:
            raise ExportError(
                f"the audit trail is broken at seq {problem.seq}: {problem.reason} "
                "(run axis audit verify)"
            )
        current = previous
        for index in range(0, len(digests), 32):
            current = link_hash(current, digests[index : index + 32])
        if current != head.hash:
            raise ExportError(f"the signed chain head at seq {head.seq} disagrees with the chain")
        files = _gather(conn, archive, events)
    files[EVENTS] = _events_json(document_id, first, previous, head.seq, events)
    files[LINKS] = digests
    files[HEAD] = head.body
    hub_signed = [files[HEAD], *(body for name, body in files.items() if _is_hub_answer(name))]
    files[HUB_CERTIFICATES] = b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in signing_certificates(hub_signed)
    )
    files[README] = _readme(document_id, first, head.seq, len(events)).encode()
    files[MANIFEST] = manifest_bytes(document_id, files)
    return Export(
        document_id,
        files,
        len(events),
        first,
        head.seq,
        head.signed_at,
        signed,
        len(trail) - len(events),
    )


def _covering_head(conn: sa.Connection, seq: int) -> sa.Row | None:
    return conn.execute(
        sa.select(ChainHead.seq, ChainHead.hash, ChainHead.signed_at, ChainHead.body)
        .where(ChainHead.seq >= seq)
        .order_by(ChainHead.seq)
        .limit(1)
    ).one_or_none()


def _newest_head(conn: sa.Connection) -> sa.Row | None:
    return conn.execute(
        sa.select(ChainHead.seq, ChainHead.hash, ChainHead.signed_at, ChainHead.body)
        .order_by(ChainHead.seq.desc())
        .limit(1)
    ).one_or_none()


def _is_hub_answer(name: str) -> bool:
    return name == RECEIPT or name.endswith((".receipt.xml", ".rejection.xml"))


def _body(conn: sa.Connection, archive: Archive, sha256: str, what: str) -> bytes:
    entry = record.archive_entry(conn, sha256)
    if entry is None:
        raise ExportError(f"the archive has no body with SHA-256 {sha256} ({what})")
    try:
        return archive.read(entry)
    except ArchiveError as exc:
        raise ExportError(f"{what}: {exc}") from None


def _gather(conn: sa.Connection, archive: Archive, events: Sequence[Link]) -> dict[str, bytes]:
    """The original bodies and the hub's answers the events refer to."""
    answers = record.stored_receipts(conn, {e.receipt_id for e in events if e.receipt_id})
    files: dict[str, bytes] = {}

    def answer(receipt_id: str, name: str, what: str, *, required: bool = True) -> None:
        body = answers.get(receipt_id)
        if body is None:
            if required:
                raise ExportError(f"the hub has not stored the receipt of {what} yet")
            return
        files[name] = body

    for event in events:
        rid = event.receipt_id or ""
        sha = str(json.loads(event.detail).get("sha256", "")) if event.detail else ""
        if event.kind == "RECEIVED":
            if DOCUMENT in files:
                continue  # an action repeating the DocumentId: gathered with its event
            files[DOCUMENT] = _body(conn, archive, sha, f"the document, event #{event.seq}")
            answer(rid, RECEIPT, f"the document (event #{event.seq})")
        elif event.kind == "STATUS":
            files[f"{MESSAGES}{rid}.xml"] = _body(
                conn, archive, sha, f"the status of event #{event.seq}"
            )
            answer(rid, f"{MESSAGES}{rid}.receipt.xml", f"the status of event #{event.seq}")
        elif event.kind in _BUSINESS:
            acting = conn.execute(
                sa.select(DocumentRow.sha256).where(DocumentRow.receipt_id == rid)
            ).scalar_one_or_none()
            if acting is None:
                raise ExportError(f"the document of event #{event.seq} is not recorded")
            files[f"{MESSAGES}{rid}.xml"] = _body(
                conn, archive, acting, f"the document of event #{event.seq}"
            )
            answer(rid, f"{MESSAGES}{rid}.receipt.xml", f"the document of event #{event.seq}")
        elif event.kind == "REJECTED":
            answer(rid, f"{MESSAGES}{rid}.rejection.xml", "", required=False)
    return files


def _events_json(
    document_id: str, first: int, previous: str, last: int, events: Sequence[Link]
) -> bytes:
    data = {
        "document_id": document_id,
        "first_seq": first,
        "previous_hash": previous,
        "last_seq": last,
        "events": [
            {
                "seq": e.seq,
                "at": format_time(e.at),
                "event": e.kind,
                "receipt_id": e.receipt_id,
                "document_id": e.document_id,
                "sender": e.sender,
                "recipient": e.recipient,
                "code": e.code,
                "detail": e.detail,
                "hash": e.hash,
            }
            for e in events
        ],
    }
    return (json.dumps(data, indent=1, ensure_ascii=False) + "\n").encode()


def _readme(document_id: str, first: int, head_seq: int, count: int) -> str:
    return f"""Axis evidence bundle, format {FORMAT} version {VERSION}

Document: {document_id}
Audit events of the document: {count}, linked through the hub's hash chain from
seq {first} to the signed chain head at seq {head_seq}.

Check it with the Axis command, offline (no database, no broker, no hub config):

    axis audit check THIS.zip --trust CA.pem

CA.pem is the trust anchor that issued the sender's and the hub's certificates.

Or by hand:

1. manifest.json lists the SHA-256 of every other file:  sha256sum -c is
   enough, e.g.  python3 -c 'import json,hashlib;m=json.load(open("manifest.json"));
   [print(n, hashlib.sha256(open(n,"rb").read()).hexdigest()==h) for n,h in m["files"].items()]'
2. document.xml is the sender's original bytes, signed by the sender (XML-DSig,
   exclusive C14N, SHA-256):  xmlsec1 --verify --trusted-pem CA.pem document.xml
   receipt.xml and chain-head.xml (and messages/*.receipt.xml) are signed by the
   hub, whose certificate is in hub.pem and chains to CA.pem:
   xmlsec1 --verify --trusted-pem CA.pem receipt.xml
3. The SHA-256 of document.xml equals receipt.xml's <Sha256> and the "sha256"
   in the RECEIVED event's detail in events.json.
4. The chain: for each seq n from first_seq to last_seq (events.json), the link
   hash is  h_n = SHA-256(h_(n-1) || d_n)  over the raw 32-byte values, starting
   from h_(first_seq - 1) = previous_hash, where d_n is the n-th 32-byte digest in
   chain-links.bin (in seq order). h_(last_seq) must equal <ChainHash> in
   chain-head.xml, whose <Seq> is last_seq.
5. Each event in events.json is the document's own: its d_n is SHA-256 of the
   UTF-8 JSON array (no spaces, non-ASCII as is)
       [seq, at, event, receipt_id, document_id, sender, recipient, code, detail]
   and must equal the digest at its place in chain-links.bin; its "hash" is h_n.
   The receipt's <AuditSeq> and <ChainHash> are the RECEIVED event's seq and h_n.
   The digests of the other events on the chain belong to other documents and
   reveal nothing of them.
6. messages/<receipt id>.xml are the recipients' signed statuses (and any revoke,
   update or replace of the document), each with the hub's receipt beside it.

A bundle proves that the events it lists are in the hub's chain as signed; it
cannot prove that the hub recorded no other event about the document.
"""
