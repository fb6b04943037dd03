"""The agency side of PROTOCOL sections 3-6: send documents, receive deliveries.

One :class:`AgencyClient` is one agency's AMQP connection (pika
``BlockingConnection``) with publisher confirms and a consumer on its inbox.
Everything it hands to the caller is checked first: the hub's receipts and
rejections against the hub's certificate, deliveries end to end against the
agencies' trust anchors, never on the hub's word.

Not thread-safe (pika's blocking connection is not): use one client per thread.

Delivery contract (at-least-once, PROTOCOL section 6): a delivery is acknowledged
to the broker only when the caller comes back to :meth:`AgencyClient.receive` for
the next one, or calls :meth:`Delivery.ack`; if the process dies first, or the loop
ends by ``break`` or an exception, it is delivered again. Deliveries repeated with
an ``x-axis-receipt-id`` already handed over are dropped (kept across restarts
when the client has a ``state_dir``); a DMS should still treat the receipt id as
the key of what it stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import ssl
import time
import tomllib
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions
import structlog
from cryptography import x509
from lxml import etree

import schemas
from adapters.errors import (
    AccessRefused,
    AnswerInvalid,
    AnswerTimeout,
    AxisClientError,
    BrokerUnavailable,
    BrokerUntrusted,
    DeliveryInvalid,
    Rejected,
    rejected,
)
from adapters.seen import SeenSet
from axis.broker.topology import SUBMIT_EXCHANGE, inbox_queue, validate_agency_code
from axis.deliver import RECEIPT_ID, RECEIVED_AT, SENDER
from axis.rejections import Rejection, SchemaInvalid, SenderMismatch
from schemas.structure import envelope_kind
from schemas.xml import DEFAULT_MAX_BYTES, parse
from signing import Signer, TrustStore, VerifiedSignature, Verifier
from signing.pki import PrivateKey, fingerprint, load_certificates, load_key
from signing.profile import ds

log = structlog.get_logger("adapters.client")

__all__ = ["AgencyClient", "Delivery", "Receipt", "SendResult"]

PathLike = str | os.PathLike[str]
Kind = Literal["edoc", "status"]

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
_SIGNATURE = ds("Signature")
_DOCUMENT_ID = etree.XPath(
    "e:edXMLEnvelope/e:edXMLHeader/e:MessageHeader/e:DocumentId/text()"
    " | e:edXMLEnvelope/e:edXMLHeader/e:MessageHeader/e:ResponseFor/e:DocumentId/text()",
    namespaces={"e": EDXML_NS},
)

RECONNECT_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Back-off between connection attempts, in seconds; the last one repeats."""

_LOST = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.ChannelClosed,
    pika.exceptions.ChannelWrongStateError,
    OSError,
)
# Closing codes that mean "this agency may not do that": retrying cannot help.
_FATAL_CODES = {403, 404, 406, 530}


@dataclass(frozen=True)
class Receipt:
    """The hub's signed receipt for a sent document, verified against the hub's certificate."""

    receipt: schemas.AxisReceipt
    body: bytes
    """The receipt as the hub signed it: keep it, it is the proof of submission."""
    hub: VerifiedSignature

    @property
    def receipt_id(self) -> str:
        """The hub's id for the document (also ``x-axis-receipt-id`` of its deliveries)."""
        return self.receipt.receipt_id

    @property
    def message_id(self) -> str:
        """The message id the hub recorded the document under."""
        return self.receipt.message_id

    @property
    def document_id(self) -> str | None:
        """The DocumentId (of the edoc, or of the document a status is about)."""
        return self.receipt.document_id

    @property
    def received_at(self) -> datetime:
        """When the hub received the document (UTC)."""
        return self.receipt.received_at

    @property
    def recipients(self) -> tuple[schemas.RecipientOutcome, ...]:
        """Each recipient and what the hub did for it."""
        return self.receipt.recipients


@dataclass(eq=False)
class SendResult:
    """One sent document and, once it came, the hub's answer.

    Exactly one of ``receipt``, ``rejected`` and ``error`` is set when ``done``.
    """

    message_id: str
    kind: Kind
    body: bytes
    """The bytes published (signed): re-send these with the same ``message_id``."""
    document_id: str | None
    receipt: Receipt | None = None
    rejected: Rejected | None = None
    error: AxisClientError | None = None
    background: bool = field(default=False, repr=False)

    @property
    def done(self) -> bool:
        """Whether the hub's answer arrived."""
        return self.receipt is not None or self.rejected is not None or self.error is not None

    @property
    def accepted(self) -> bool:
        """Whether the hub accepted the document (a verified receipt)."""
        return self.receipt is not None

    def raise_for_answer(self) -> Receipt:
        """The receipt; raises the :class:`Rejected` or :class:`AnswerInvalid` instead."""
        if self.rejected is not None:
            raise self.rejected
        if self.error is not None:
            raise self.error
        if self.receipt is None:
            raise AxisClientError(f"message {self.message_id} has no answer yet")
        return self.receipt


@dataclass(eq=False)
class Delivery:
    """One message taken from the agency's inbox.

    ``kind`` is ``edoc`` or ``status`` (a document from another agency), or
    ``receipt`` / ``rejection`` (a hub answer that matched no send of this client,
    e.g. one sent before a restart: ``correlation_id`` is that send's message id).

    A delivery whose check failed has ``verified`` False and ``error`` set (a
    :class:`~axis.rejections.Rejection`); reading its ``document`` raises
    :class:`~adapters.errors.DeliveryInvalid`. It is still acknowledged like any
    other, so it does not come back forever: the DMS must record it (the hub's
    audit trail has the same bytes).
    """

    kind: str
    body: bytes
    receipt_id: str | None
    sender: str | None
    received_at: datetime | None
    message_id: str | None
    correlation_id: str | None
    signer: VerifiedSignature | None
    error: Exception | None
    parsed: schemas.Edoc | schemas.Status | schemas.AxisReceipt | schemas.AxisRejection | None = (
        field(default=None, repr=False)
    )
    _settle: Callable[[Delivery], None] | None = field(default=None, repr=False)
    _generation: int = field(default=0, repr=False)
    _tag: int = field(default=0, repr=False)
    settled: bool = field(default=False, repr=False)

    @property
    def verified(self) -> bool:
        """Whether every check passed (signature, certificate, sender)."""
        return self.error is None and self.parsed is not None

    @property
    def document(
        self,
    ) -> schemas.Edoc | schemas.Status | schemas.AxisReceipt | schemas.AxisRejection:
        """The parsed, verified document; raises ``DeliveryInvalid`` when it failed a check."""
        if self.error is not None or self.parsed is None:
            raise DeliveryInvalid(self.receipt_id, self.error or SchemaInvalid("unparsed"))
        return self.parsed

    @property
    def edoc(self) -> schemas.Edoc:
        """The document of an ``edoc`` delivery (``TypeError`` for other kinds)."""
        document = self.document
        if not isinstance(document, schemas.Edoc):
            raise TypeError(f"a {self.kind} delivery holds no edoc")
        return document

    @property
    def status(self) -> schemas.Status:
        """The status of a ``status`` delivery (``TypeError`` for other kinds)."""
        document = self.document
        if not isinstance(document, schemas.Status):
            raise TypeError(f"a {self.kind} delivery holds no status")
        return document

    def ack(self) -> None:
        """Acknowledge now (otherwise done when the caller asks for the next delivery)."""
        if self._settle is not None:
            self._settle(self)


def _certificates(
    value: x509.Certificate | Sequence[x509.Certificate] | PathLike,
) -> list[x509.Certificate]:
    if isinstance(value, x509.Certificate):
        return [value]
    if isinstance(value, str | os.PathLike):
        certificates = load_certificates(value)
        if not certificates:
            raise ValueError(f"{value}: no PEM certificate")
        return certificates
    return list(value)


def _trust(
    value: TrustStore | Sequence[x509.Certificate | PathLike], crls: Sequence[PathLike]
) -> TrustStore:
    if isinstance(value, TrustStore):
        return value
    anchors = [c for item in value for c in _certificates(item)]
    revoked = [
        x509.load_pem_x509_crl(b"-----BEGIN X509 CRL-----" + block)
        for path in crls
        for block in Path(path).read_bytes().split(b"-----BEGIN X509 CRL-----")[1:]
    ]
    return TrustStore(anchors, revoked)


def _received_at(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


class AgencyClient:
    """An agency's connection to the hub: send documents and statuses, receive deliveries.

    Credentials: ``password`` or ``password_file`` (the AMQP password that
    ``axis agency add`` printed); the AMQP user is always ``code``. The broker is
    ``amqp_url`` (``amqp://`` or ``amqps://``, any credentials in it are ignored in
    favour of ``code``/``password``) or ``host``/``port``/``vhost``/``tls``. For TLS,
    ``tls_ca_file`` is the CA of the broker's certificate and ``tls_cert_file`` /
    ``tls_key_file`` an optional client certificate.

    Signing: ``key`` and ``certificate`` (objects or PEM paths; a PEM file may hold
    the chain after the leaf). Verifying senders: ``trust_anchors`` (the CAs that
    issue agency certificates; a :class:`~signing.TrustStore` or certificates or PEM
    paths) and optional ``crls``. Verifying the hub: ``hub_certificate`` (pinned:
    answers must be signed by exactly that certificate) or ``hub_trust`` (answers
    signed by a certificate with CN ``hub_name`` chaining to those anchors); with
    neither, ``trust_anchors`` and ``hub_name`` are used.

    ``state_dir`` keeps the ids of deliveries already handed over, so a restarted
    client drops repeats. ``reconnect_timeout`` bounds how long an operation keeps
    reconnecting before :class:`~adapters.errors.BrokerUnavailable` (None: forever).
    """

    def __init__(
        self,
        code: str,
        *,
        key: PrivateKey | PathLike,
        certificate: x509.Certificate | PathLike,
        trust_anchors: TrustStore | Sequence[x509.Certificate | PathLike],
        password: str | None = None,
        password_file: PathLike | None = None,
        amqp_url: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        vhost: str = "/",
        tls: bool = False,
        tls_ca_file: PathLike | None = None,
        tls_cert_file: PathLike | None = None,
        tls_key_file: PathLike | None = None,
        crls: Sequence[PathLike] = (),
        hub_certificate: x509.Certificate | PathLike | None = None,
        hub_trust: TrustStore | Sequence[x509.Certificate | PathLike] | None = None,
        hub_name: str = "axis-hub",
        auto_ack_status: bool = True,
        state_dir: PathLike | None = None,
        prefetch: int = 64,
        heartbeat: int = 30,
        reconnect_timeout: float | None = 300.0,
        max_message_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.code = validate_agency_code(code)
        if password is None:
            if password_file is None:
                raise ValueError("give the AMQP password as password or password_file")
            password = Path(password_file).read_text(encoding="utf-8").strip()
        certificates = _certificates(certificate)
        self.signer = Signer(
            load_key(key) if isinstance(key, str | os.PathLike) else key,
            certificates[0],
            certificates[1:],
        )
        self.verifier = Verifier(_trust(trust_anchors, crls))
        if hub_certificate is not None:
            pinned = _certificates(hub_certificate)[0]
            # The pinned certificate is its own anchor: no CA needed to check the hub.
            self._hub_verifier = Verifier(TrustStore([pinned]))
            self._hub_fingerprint: str | None = fingerprint(pinned)
        else:
            self._hub_verifier = (
                Verifier(_trust(hub_trust, ())) if hub_trust is not None else self.verifier
            )
            self._hub_fingerprint = None
        self.hub_name = hub_name
        self.auto_ack_status = auto_ack_status
        self.prefetch = prefetch
        self.reconnect_timeout = reconnect_timeout
        self.max_message_bytes = max_message_bytes
        self.inbox = inbox_queue(self.code)
        self._parameters = _parameters(
            self.code,
            password,
            amqp_url=amqp_url,
            host=host,
            port=port,
            vhost=vhost,
            tls=tls,
            tls_ca_file=tls_ca_file,
            tls_cert_file=tls_cert_file,
            tls_key_file=tls_key_file,
            heartbeat=heartbeat,
        )
        self._seen = SeenSet(Path(state_dir) / "seen.sqlite3" if state_dir else None)
        self._connection: pika.BlockingConnection | None = None
        self._channel: Any = None
        self._consumers: list[str] = []
        self._generation = 0
        self._raw: deque[tuple[int, int, pika.BasicProperties, bytes]] = deque()
        self._ready: deque[Delivery] = deque()
        self._pending: dict[str, SendResult] = {}
        self._closed = False

    @classmethod
    def from_config(cls, path: PathLike, **overrides: Any) -> AgencyClient:
        """A client from an agency TOML file; relative paths are against its folder.

        ::

            [agency]
            code = "000.00.00.G22"
            key = "pki/agency.key"
            certificate = "pki/agency.pem"
            state_dir = "state"                  # optional
            [broker]
            url = "amqps://axis.example.gov.vn:5671/"
            vhost = "/"
            password_file = "amqp.password"
            tls_ca_file = "pki/broker-ca.pem"    # optional
            [trust]
            anchors = ["pki/gov-ca.pem"]
            crls = []                            # optional
            hub_certificate = "pki/hub.pem"      # or hub_anchors = [...]

        Keyword ``overrides`` (the constructor's names) win over the file.
        """
        source = Path(path)
        data = tomllib.loads(source.read_text(encoding="utf-8"))
        base = source.resolve().parent

        def resolved(value: Any) -> Any:
            return None if value is None else str(base / value)

        agency, broker, trust = (data.get(k, {}) for k in ("agency", "broker", "trust"))
        options: dict[str, Any] = {
            "code": agency.get("code"),
            "key": resolved(agency.get("key")),
            "certificate": resolved(agency.get("certificate")),
            "state_dir": resolved(agency.get("state_dir")),
            "amqp_url": broker.get("url"),
            "vhost": broker.get("vhost", "/"),
            "password": broker.get("password"),
            "password_file": resolved(broker.get("password_file")),
            "tls_ca_file": resolved(broker.get("tls_ca_file")),
            "tls_cert_file": resolved(broker.get("tls_cert_file")),
            "tls_key_file": resolved(broker.get("tls_key_file")),
            "trust_anchors": [resolved(p) for p in trust.get("anchors", [])],
            "crls": [resolved(p) for p in trust.get("crls", [])],
            "hub_certificate": resolved(trust.get("hub_certificate")),
            "hub_trust": [resolved(p) for p in trust["hub_anchors"]]
            if "hub_anchors" in trust
            else None,
        }
        options.update({k: v for k, v in overrides.items() if v is not None})
        missing = [k for k in ("code", "key", "certificate") if not options.get(k)]
        if not options["trust_anchors"]:
            missing.append("trust.anchors")
        if missing:
            raise ValueError(f"{source}: missing {', '.join(missing)}")
        return cls(**options)

    @property
    def reconnects(self) -> int:
        """How many times the connection was re-opened after a loss (for monitoring)."""
        return max(0, self._generation - 1)

    def __enter__(self) -> AgencyClient:
        self._ensure_connected()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; deliveries not yet acknowledged go back to the inbox."""
        self._closed = True
        connection, self._connection = self._connection, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(*_LOST):
                connection.close()
        self._seen.close()

    def send(
        self,
        document: schemas.Edoc | schemas.Status | bytes,
        *,
        wait: bool | float = True,
        message_id: str | None = None,
    ) -> SendResult:
        """Sign if needed, publish to ``axis.submit`` with a confirm, and wait for the answer.

        An :class:`~schemas.Edoc`, a :class:`~schemas.Status` or unsigned XML bytes
        are signed with the agency's key; bytes that already hold a ``ds:Signature``
        are sent unchanged. The message type (``edoc``/``status``) follows the root.

        ``wait=True`` waits for the hub's answer, a number waits that many seconds
        (then :class:`~adapters.errors.AnswerTimeout`, whose ``.result`` stays
        pending), ``False`` returns at once after the broker's confirm (see
        :meth:`wait`). On an answer: returns the result with its verified
        ``receipt``, or raises the typed :class:`~adapters.errors.Rejected`
        (e.g. ``except axis.rejections.UnknownRecipient``), or
        :class:`~adapters.errors.AnswerInvalid` if the answer did not verify.

        ``message_id`` is for re-sending after a crash: pass the id and exactly the
        ``body`` recorded the first time, and the hub answers it as a retry (the
        original receipt, nothing delivered twice). A broker connection lost before
        the confirm is handled here the same way.
        """
        kind, body, document_id = self.prepare(document)
        result = SendResult(message_id or str(uuid.uuid4()), kind, body, document_id)
        if not schemas.is_message_id(result.message_id):
            raise ValueError(f"{result.message_id!r} is not a valid message id")
        self._pending[result.message_id] = result
        try:
            self._publish(result)
        except BaseException:
            self._pending.pop(result.message_id, None)
            raise
        log.info("document.sent", message_id=result.message_id, kind=kind, document_id=document_id)
        if wait is False:
            return result
        return self.wait(result, timeout=None if wait is True else float(wait))

    def send_status(
        self,
        document_id: str,
        code: schemas.StatusCode | str,
        description: str | None = None,
        *,
        to: str | None = None,
        document: schemas.Edoc | None = None,
        staff: schemas.StaffInfo | None = None,
        wait: bool | float = True,
    ) -> SendResult:
        """Report a status (EDXML.md 2) on a document, as an edXML status envelope.

        ``to`` is the agency the status is for (``ResponseFor/OrganId``): the
        document's sender for codes 01–06, 15 and 16, one of its recipients for 13.
        With ``document`` (the received Edoc), ``to`` defaults to its sender and
        ResponseFor carries its Code and PromulgationDate; otherwise ``to`` defaults
        to the agency inside a structured DocumentId (ValueError for an opaque one).
        Waits and raises like :meth:`send`.
        """
        reference = None if document is None else schemas.ResponseFor.of(document)
        if to is None:
            if reference is not None:
                to = reference.organ_id
            else:
                parts = schemas.DocumentId.read(document_id)
                if parts is None:
                    raise ValueError(f"{document_id!r} is opaque: say whom the status is for (to=)")
                to = parts.organ_id
        status = schemas.Status.about(
            self.code,
            document_id,
            code,
            datetime.now(UTC),
            addressee=to or "",
            description=description,
            staff=staff,
            response_for=reference,
        )
        return self.send(status, wait=wait)

    def wait(self, result: SendResult, timeout: float | None = None) -> SendResult:
        """Wait for the answer to ``result`` (sent with ``wait=False``); raises like :meth:`send`.

        Deliveries that arrive meanwhile are kept for :meth:`receive`.
        """
        start = time.monotonic()
        while not result.done:
            waited = time.monotonic() - start
            if timeout is not None and waited >= timeout:
                raise AnswerTimeout(result, waited)
            self._make_room()
            self._pump(0.2 if timeout is None else min(0.2, timeout - waited))
        result.raise_for_answer()
        return result

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for the answers to every send still pending (automatic statuses too).

        Returns whether all came within ``timeout``; rejections of sends nobody waits
        for are logged, and deliveries arriving meanwhile are kept for :meth:`receive`.
        """
        start = time.monotonic()
        while self._pending:
            waited = time.monotonic() - start
            if timeout is not None and waited >= timeout:
                return False
            self._make_room()
            self._pump(0.2 if timeout is None else min(0.2, timeout - waited))
        return True

    def receive(self, timeout: float | None = None) -> Iterator[Delivery]:
        """Yield deliveries from ``axis.inbox.<CODE>`` as they come.

        ``timeout``: stop after that many seconds without a delivery (None: never).
        Each delivery is acknowledged when the caller asks for the next one (or calls
        :meth:`Delivery.ack`); if the loop is left early, the last one is handed back
        to the broker and comes again. For a verified edoc, status 01 (arrived) is
        sent to its sender at that moment unless ``auto_ack_status`` is False.
        """
        idle_since = time.monotonic()
        pumped = False
        while True:
            self._drain()
            if self._ready:
                delivery = self._ready.popleft()
                try:
                    yield delivery
                except GeneratorExit:
                    if not delivery.settled:
                        self._requeue(delivery)
                    raise
                self._settle(delivery)
                idle_since = time.monotonic()
                continue
            idle = time.monotonic() - idle_since
            # Read the socket at least once, so that timeout=0 polls what has arrived.
            if timeout is not None and idle >= timeout and pumped:
                return
            self._pump(0.2 if timeout is None else max(0.0, min(0.2, timeout - idle)))
            pumped = True

    def prepare(
        self, document: schemas.Edoc | schemas.Status | bytes
    ) -> tuple[Kind, bytes, str | None]:
        """``(kind, signed bytes, DocumentId)`` of what :meth:`send` would publish.

        For an adapter that records the exact bytes before sending (as the folder
        bridge does), so that it can re-send them after a crash. Signing is
        randomized for EC keys, so signing the same document twice gives different
        bytes, which the hub would refuse as ``DUPLICATE_CONFLICT``. Raises
        ``Malformed``/``SchemaInvalid``/``SignatureInvalid`` for what cannot be sent.
        """
        if isinstance(document, schemas.Edoc | schemas.Status):
            root = schemas.to_element(document)
            kind: Kind = "edoc" if isinstance(document, schemas.Edoc) else "status"
            return kind, self.signer.sign(root), document.document_id
        body = bytes(document)
        root = parse(body, max_bytes=self.max_message_bytes)
        found_kind = envelope_kind(root)
        if found_kind is None:
            raise SchemaInvalid(
                "expected an edXML envelope of a document (with To) or a status (with StatusCode)"
            )
        kind = "edoc" if found_kind == "edoc" else "status"
        found = _DOCUMENT_ID(root)
        document_id = str(found[0]).strip() if found else None
        if next(root.iter(_SIGNATURE), None) is None:
            body = self.signer.sign(root, max_bytes=self.max_message_bytes)
        return kind, body, document_id

    def _publish(self, result: SendResult) -> None:
        properties = pika.BasicProperties(
            delivery_mode=2,
            content_type="application/xml",
            type=result.kind,
            message_id=result.message_id,
            user_id=self.code,
        )
        nacks = 0
        while True:
            channel = self._ensure_connected()
            try:
                channel.basic_publish(SUBMIT_EXCHANGE, "", result.body, properties, mandatory=True)
                return
            except pika.exceptions.UnroutableError:
                raise AxisClientError(
                    "axis.submit routed the message nowhere: is the hub's topology declared?"
                ) from None
            except pika.exceptions.NackError:
                nacks += 1
                if nacks > len(RECONNECT_DELAYS):
                    raise AxisClientError(
                        f"the broker refused message {result.message_id}"
                    ) from None
                time.sleep(RECONNECT_DELAYS[nacks - 1])
            except _LOST as exc:
                # Unconfirmed: publish again, same id and bytes, so the hub sees a retry.
                self._lost(exc)

    def _ensure_connected(self) -> Any:
        if self._closed:
            raise AxisClientError("the client is closed")
        if self._connection is None or not self._connection.is_open:
            self._connect()
        return self._channel

    def _connect(self) -> None:
        start = time.monotonic()
        delays = itertools.chain(RECONNECT_DELAYS, itertools.repeat(RECONNECT_DELAYS[-1]))
        while True:
            try:
                connection = pika.BlockingConnection(self._parameters)
            except _LOST as exc:
                _raise_if_fatal(exc)
                error: Exception = exc
            else:
                try:
                    self._open_channel(connection)
                    return
                except _LOST as exc:
                    _close_quietly(connection)
                    _raise_if_fatal(exc)
                    error = exc
            elapsed = time.monotonic() - start
            if self.reconnect_timeout is not None and elapsed >= self.reconnect_timeout:
                raise BrokerUnavailable(f"no broker after {elapsed:.0f} s: {error!r}") from error
            delay = next(delays)
            log.warning("broker.unavailable", agency=self.code, error=repr(error), retry_in=delay)
            time.sleep(delay)

    def _open_channel(self, connection: pika.BlockingConnection) -> None:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_qos(prefetch_count=self.prefetch)
        self._generation += 1
        self._connection, self._channel, self._consumers = connection, channel, []
        # What was buffered but not acknowledged on the old channel comes again.
        self._raw.clear()
        self._ready.clear()
        self._consume()
        log.info("broker.connected", agency=self.code, generation=self._generation)

    def _consume(self) -> None:
        generation = self._generation

        def on_message(_channel: Any, method: Any, properties: Any, body: bytes) -> None:
            self._raw.append((generation, method.delivery_tag, properties, body))

        self._consumers.append(self._channel.basic_consume(self.inbox, on_message))

    def _make_room(self) -> None:
        # Receipts share the inbox with deliveries: when the prefetch window is full
        # of deliveries the caller has not taken yet, a waiting send would never see
        # its answer. A further consumer on the same channel gets a window of its own.
        if self._connection is None or not self._connection.is_open:
            return
        if len(self._ready) + len(self._raw) >= self.prefetch * len(self._consumers) - 1:
            try:
                self._consume()
            except _LOST as exc:
                self._lost(exc)
                return
            log.warning("inbox.window_widened", agency=self.code, consumers=len(self._consumers))

    def _lost(self, exc: BaseException) -> None:
        _raise_if_fatal(exc)
        log.warning("broker.connection_lost", agency=self.code, error=repr(exc))
        connection, self._connection = self._connection, None
        if connection is not None:
            _close_quietly(connection)

    def _pump(self, seconds: float) -> None:
        self._ensure_connected()
        assert self._connection is not None
        try:
            self._connection.process_data_events(time_limit=seconds)
        except _LOST as exc:
            self._lost(exc)
        self._drain()

    def _drain(self) -> None:
        while self._raw:
            generation, tag, properties, body = self._raw.popleft()
            if generation != self._generation:
                continue
            kind = properties.type or ""
            if kind in ("receipt", "rejection"):
                self._on_answer(kind, generation, tag, properties, body)
            else:
                self._on_delivery(kind, generation, tag, properties, body)

    def _is_repeat(self, kind: str, receipt_id: str | None) -> bool:
        if not receipt_id:
            return False
        if (kind, receipt_id) in self._seen:
            return True
        return any(d.kind == kind and d.receipt_id == receipt_id for d in self._ready)

    def _on_delivery(
        self, kind: str, generation: int, tag: int, properties: Any, body: bytes
    ) -> None:
        headers = properties.headers or {}
        receipt_id = headers.get(RECEIPT_ID)
        if self._is_repeat(kind, receipt_id):
            log.info("delivery.repeat_dropped", agency=self.code, receipt_id=receipt_id, kind=kind)
            self._ack(generation, tag)
            return
        sender = headers.get(SENDER)
        received_at = _received_at(headers.get(RECEIVED_AT))
        signer: VerifiedSignature | None = None
        parsed: schemas.Edoc | schemas.Status | None = None
        error: Exception | None = None
        try:
            if kind not in ("edoc", "status"):
                raise SchemaInvalid(f"unknown message type {kind!r}")
            # At the hub's receipt time: a certificate that expired while the
            # document waited in the inbox was valid when it was sent.
            at = received_at or datetime.now(UTC)
            signer = self.verifier.verify(body, at=at, max_bytes=self.max_message_bytes)
            if not sender or signer.subject_code != sender:
                raise SenderMismatch(
                    f"signed by {signer.subject_code}, delivered as from {sender or 'nobody'}"
                )
            if kind == "edoc":
                parsed = schemas.parse_edoc(body, max_bytes=self.max_message_bytes)
                author = parsed.sender.organ_id
            else:
                parsed = schemas.parse_status(body, max_bytes=self.max_message_bytes)
                author = parsed.sender_id
            if author != sender:
                raise SenderMismatch(f"the document is from {author}, delivered as from {sender}")
        except (Rejection, ValueError) as exc:
            error, parsed = exc, None
            log.warning("delivery.invalid", agency=self.code, receipt_id=receipt_id, error=str(exc))
        self._ready.append(
            Delivery(
                kind=kind,
                body=body,
                receipt_id=receipt_id,
                sender=sender,
                received_at=received_at,
                message_id=properties.message_id,
                correlation_id=properties.correlation_id,
                signer=signer,
                error=error,
                parsed=parsed,
                _settle=self._settle,
                _generation=generation,
                _tag=tag,
            )
        )

    def _verify_hub(self, body: bytes) -> VerifiedSignature:
        signer = self._hub_verifier.verify(
            body, at=datetime.now(UTC), max_bytes=self.max_message_bytes
        )
        if self._hub_fingerprint is not None:
            if signer.fingerprint != self._hub_fingerprint:
                raise SenderMismatch("the answer is not signed by the pinned hub certificate")
        elif signer.subject_code != self.hub_name:
            raise SenderMismatch(f"the answer is signed by {signer.subject_code}, not the hub")
        return signer

    def _on_answer(
        self, kind: str, generation: int, tag: int, properties: Any, body: bytes
    ) -> None:
        receipt_id = (properties.headers or {}).get(RECEIPT_ID)
        hub: VerifiedSignature | None = None
        parsed: schemas.AxisReceipt | schemas.AxisRejection | None = None
        error: Exception | None = None
        try:
            hub = self._verify_hub(body)
            if kind == "receipt":
                parsed = schemas.parse_receipt(body, max_bytes=self.max_message_bytes)
            else:
                parsed = schemas.parse_rejection(body, max_bytes=self.max_message_bytes)
        except (Rejection, ValueError) as exc:
            error = exc
        result = self._pending.get(properties.correlation_id or "")
        if result is not None:
            if (
                error is None
                and isinstance(parsed, schemas.AxisReceipt)
                and parsed.sha256 != hashlib.sha256(result.body).hexdigest()
            ):
                error = SchemaInvalid("the receipt is for other bytes than were sent")
            self._resolve(result, parsed, body, hub, error)
            if error is None and receipt_id:
                self._seen.add(kind, receipt_id)
            self._ack(generation, tag)
            return
        if error is None and self._is_repeat(kind, receipt_id):
            self._ack(generation, tag)
            return
        self._ready.append(
            Delivery(
                kind=kind,
                body=body,
                receipt_id=receipt_id,
                sender=None,
                received_at=None,
                message_id=properties.message_id,
                correlation_id=properties.correlation_id,
                signer=hub,
                error=error,
                parsed=None if error else parsed,
                _settle=self._settle,
                _generation=generation,
                _tag=tag,
            )
        )

    def _resolve(
        self,
        result: SendResult,
        parsed: schemas.AxisReceipt | schemas.AxisRejection | None,
        body: bytes,
        hub: VerifiedSignature | None,
        error: Exception | None,
    ) -> None:
        del self._pending[result.message_id]
        if error is not None or parsed is None or hub is None:
            result.error = AnswerInvalid(result.message_id, error or SchemaInvalid("no answer"))
            log.error("answer.invalid", message_id=result.message_id, error=str(error))
        elif isinstance(parsed, schemas.AxisReceipt):
            result.receipt = Receipt(parsed, body, hub)
        else:
            result.rejected = rejected(parsed, body, hub)
            if result.background:
                log.warning(
                    "status.rejected",
                    message_id=result.message_id,
                    code=parsed.code,
                    reason=parsed.reason,
                )

    def _settle(self, delivery: Delivery) -> None:
        if delivery.settled:
            return
        delivery.settled = True
        if delivery.verified and delivery.receipt_id:
            # Before the ack: once acknowledged, a repeat must already be known.
            self._seen.add(delivery.kind, delivery.receipt_id)
        self._ack(delivery._generation, delivery._tag)
        if self.auto_ack_status and delivery.verified and isinstance(delivery.parsed, schemas.Edoc):
            status = schemas.Status.about(
                self.code,
                delivery.parsed.document_id,
                schemas.StatusCode.ARRIVED,
                datetime.now(UTC),
                addressee=delivery.parsed.sender.organ_id,
                description="Đã đến",
                response_for=schemas.ResponseFor.of(delivery.parsed),
            )
            result = self.send(status, wait=False)
            result.background = True

    def _ack(self, generation: int, tag: int) -> None:
        if generation != self._generation or self._connection is None:
            return  # the old channel is gone; the broker re-delivers, the seen set drops it
        try:
            self._channel.basic_ack(tag)
        except _LOST as exc:
            self._lost(exc)

    def _requeue(self, delivery: Delivery) -> None:
        delivery.settled = True
        if delivery._generation != self._generation or self._connection is None:
            return
        try:
            self._channel.basic_nack(delivery._tag, requeue=True)
        except _LOST as exc:
            self._lost(exc)


def _raise_if_fatal(exc: BaseException) -> None:
    if isinstance(exc, ssl.SSLCertVerificationError):
        # Checked before any credential is sent; a retry would meet the same certificate.
        raise BrokerUntrusted(f"the broker's TLS certificate is not trusted: {exc}") from exc
    if isinstance(
        exc,
        pika.exceptions.ProbableAuthenticationError
        | pika.exceptions.ProbableAccessDeniedError
        | pika.exceptions.AuthenticationError,
    ):
        raise AccessRefused(f"the broker refused the login: {exc!r}") from exc
    code = getattr(exc, "reply_code", None)
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker) and code in _FATAL_CODES:
        raise AccessRefused(f"the broker refused: {exc.reply_text}") from exc


def _close_quietly(connection: pika.BlockingConnection) -> None:
    # It is already broken: a failure to close it says nothing new.
    with contextlib.suppress(Exception):
        if connection.is_open:
            connection.close()


def _parameters(
    code: str,
    password: str,
    *,
    amqp_url: str | None,
    host: str,
    port: int | None,
    vhost: str,
    tls: bool,
    tls_ca_file: PathLike | None,
    tls_cert_file: PathLike | None,
    tls_key_file: PathLike | None,
    heartbeat: int,
) -> pika.ConnectionParameters:
    if amqp_url is not None:
        split = urlsplit(amqp_url)
        tls = split.scheme == "amqps"
        host = split.hostname or host
        port = split.port or port
        if split.path not in ("", "/"):
            vhost = unquote(split.path[1:])
    ssl_options = None
    if tls:
        context = ssl.create_default_context(cafile=str(tls_ca_file) if tls_ca_file else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if tls_cert_file:
            context.load_cert_chain(str(tls_cert_file), str(tls_key_file) if tls_key_file else None)
        ssl_options = pika.SSLOptions(context, host)
    return pika.ConnectionParameters(
        host=host,
        port=port or (5671 if tls else 5672),
        virtual_host=vhost,
        credentials=pika.PlainCredentials(code, password),
        heartbeat=heartbeat,
        blocked_connection_timeout=60,
        connection_attempts=1,
        ssl_options=ssl_options,
        client_properties={"connection_name": f"axis-agency {code}"},
    )
