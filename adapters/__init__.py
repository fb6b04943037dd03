"""Connect an agency's document-management system (DMS) to the Axis hub.

Example (with the files ``axis agency add`` and the hub operator give an agency)::

    from adapters import AgencyClient, Rejected
    from schemas.samples import sample_edoc

    with AgencyClient(
        "000.00.00.G22",
        amqp_url="amqps://axis.example.gov.vn:5671/",
        password_file="amqp.password",
        key="pki/agency.key",
        certificate="pki/agency.pem",
        trust_anchors=["pki/gov-ca.pem"],     # the CAs of agency certificates
        hub_certificate="pki/hub.pem",        # receipts must carry this signature
        state_dir="axis-state",               # remembers deliveries across restarts
    ) as client:
        edoc = sample_edoc("000.00.00.G22", ["000.00.00.H41"])
        try:
            result = client.send(edoc)        # signs, publishes, waits for the hub
            print("accepted", result.receipt.receipt_id)
        except Rejected as exc:               # or e.g. axis.rejections.UnknownRecipient
            print("refused", exc.code, exc.reason)

        for delivery in client.receive(timeout=10):
            if not delivery.verified:         # failed the end-to-end signature check
                print("invalid", delivery.receipt_id, delivery.error)
            elif delivery.kind == "edoc":     # status 01 goes back automatically
                print("document", delivery.edoc.document_id, "from", delivery.sender)
            elif delivery.kind == "status":
                print("status", delivery.status.code, "for", delivery.status.document_id)

The same in files, for a DMS that can only read and write folders:
:class:`FolderBridge` (``axis bridge folder``).

What an integrator must know:

- :meth:`AgencyClient.send` raises :class:`Rejected` (a subclass per PROTOCOL code
  that is also the :mod:`axis.rejections` class of that code); keep
  ``result.receipt.body``, the hub-signed proof of submission.
- Deliveries are at-least-once: one is acknowledged when you ask for the next
  (or call ``delivery.ack()``); repeats with a receipt id already handed over are
  dropped, but store deliveries keyed by ``delivery.receipt_id`` all the same.
- A delivery that fails the end-to-end check is yielded with ``verified`` False
  and ``error`` set, and is acknowledged: record it, do not process it.
- A client is not thread-safe; use one per thread.
"""

from adapters.client import AgencyClient, Delivery, Receipt, SendResult
from adapters.errors import (
    AccessRefused,
    AnswerInvalid,
    AnswerTimeout,
    AxisClientError,
    BrokerUnavailable,
    BrokerUntrusted,
    DeliveryInvalid,
    Rejected,
)
from adapters.folder import FolderBridge

__all__ = [
    "AccessRefused",
    "AgencyClient",
    "AnswerInvalid",
    "AnswerTimeout",
    "AxisClientError",
    "BrokerUnavailable",
    "BrokerUntrusted",
    "Delivery",
    "DeliveryInvalid",
    "FolderBridge",
    "Receipt",
    "Rejected",
    "SendResult",
]
