"""Delivery: what the hub publishes for a recorded batch, and where.

:func:`plan` is pure: it turns recorded items into :class:`Outgoing` messages —
the sender's bytes unchanged to each recipient's inbox, a signed receipt or
rejection to the sender's inbox, or the original message to ``axis.quarantine``
when nobody can be answered. The router publishes them with confirms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from axis.audit.chain import format_time
from axis.authorize import AcceptEdoc, AcceptStatus, Retry, Unattributable
from axis.broker.topology import DELIVER_EXCHANGE, QUARANTINE_QUEUE
from axis.record import Item
from axis.rejections import Rejection

RECEIPT_ID = "x-axis-receipt-id"
RECEIVED_AT = "x-axis-received-at"
SENDER = "x-axis-sender"
REASON = "x-axis-reason"
CLAIMED_USER = "x-axis-user-id"
SIGNATURE_PROFILE = "x-axis-signature-profile"
"""``strict``, or ``legacy`` for a message signed under the national SDK's profile."""


@dataclass(frozen=True)
class Outgoing:
    """One message the hub publishes (persistent, with a publisher confirm)."""

    exchange: str
    routing_key: str
    body: bytes
    type: str
    message_id: str | None
    headers: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None
    user_id: str | None = None
    item: Item | None = None
    """The batch item this publish belongs to."""


def plan(items: Sequence[Item], *, hub_user: str) -> list[Outgoing]:
    """Everything to publish for a recorded batch, deliveries before receipts."""
    deliveries: list[Outgoing] = []
    answers: list[Outgoing] = []
    for item in items:
        outcome, inbound = item.outcome, item.inbound
        if isinstance(outcome, AcceptEdoc | AcceptStatus | Retry):
            headers = {
                RECEIPT_ID: item.receipt_id,
                RECEIVED_AT: format_time(item.received_at),
                SENDER: item.sender,
                SIGNATURE_PROFILE: item.signature_profile or "strict",
            }
            kind = "status" if isinstance(outcome, AcceptStatus) else inbound.type or "edoc"
            deliveries += [
                Outgoing(
                    DELIVER_EXCHANGE,
                    recipient,
                    inbound.body,
                    kind,
                    inbound.message_id,
                    headers,
                    None,
                    hub_user,
                    item,
                )
                for recipient in item.deliveries
            ]
        if item.receipt is not None and item.sender:
            kind = "rejection" if isinstance(outcome, Rejection) else "receipt"
            answers.append(
                Outgoing(
                    DELIVER_EXCHANGE,
                    item.sender,
                    item.receipt,
                    kind,
                    item.receipt_id,
                    {RECEIPT_ID: item.receipt_id},
                    inbound.message_id,
                    hub_user,
                    item,
                )
            )
        elif isinstance(outcome, Unattributable):
            answers.append(
                Outgoing(
                    "",
                    QUARANTINE_QUEUE,
                    inbound.body,
                    inbound.type or "",
                    inbound.message_id,
                    {
                        RECEIPT_ID: item.receipt_id,
                        REASON: outcome.reason,
                        RECEIVED_AT: format_time(inbound.received_at),
                        CLAIMED_USER: inbound.user_id or "",
                    },
                    None,
                    hub_user,
                    item,
                )
            )
    return deliveries + answers
