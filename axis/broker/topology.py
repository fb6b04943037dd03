"""The broker topology of PROTOCOL section 2: names, permissions, declarations.

Two ways to put it on a broker, with the same result: over AMQP with a pika channel
(:func:`declare_hub_topology`, :func:`declare_inbox`), which is what the hub does at
start-up as its own user, and over the management API (:func:`provision_hub`,
:func:`provision_inbox`), which is what the registry and the admin tools do since only
that API can also create users and set permissions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeAlias

from schemas.ids import is_organ_id

if TYPE_CHECKING:
    from pika.adapters.blocking_connection import BlockingChannel

    from axis.broker.management import Management

__all__ = [
    "DELIVER_EXCHANGE",
    "HUB_USER",
    "INBOUND_QUEUE",
    "QUARANTINE_QUEUE",
    "SUBMIT_EXCHANGE",
    "Permissions",
    "agency_permissions",
    "declare_hub_topology",
    "declare_inbox",
    "hub_permissions",
    "inbox_queue",
    "provision_agency_user",
    "provision_hub",
    "provision_hub_user",
    "provision_inbox",
    "remove_agency_user",
    "remove_inbox",
    "validate_agency_code",
]

SUBMIT_EXCHANGE = "axis.submit"
INBOUND_QUEUE = "axis.inbound"
DELIVER_EXCHANGE = "axis.deliver"
QUARANTINE_QUEUE = "axis.quarantine"
INBOX_PREFIX = "axis.inbox."
HUB_USER = "axis-hub"

QUORUM = {"x-queue-type": "quorum"}

# RabbitMQ permission regexes in the order (configure, write, read).
Permissions: TypeAlias = tuple[str, str, str]


def validate_agency_code(code: str) -> str:
    """Return ``code`` if it is a valid agency code (``[0-9A-Z.]{1,35}``).

    Raises ValueError otherwise. Every name and permission built from a code goes
    through here, so a code can never smuggle regex syntax or another queue's name.
    """
    # fullmatch, not match with "$": "$" would also accept a trailing newline.
    if not isinstance(code, str) or not is_organ_id(code):
        raise ValueError(f"invalid agency code {code!r}: expected [0-9A-Z.]{{1,35}}")
    return code


def inbox_queue(code: str) -> str:
    """The name of the agency's inbox queue, ``axis.inbox.<CODE>``."""
    return INBOX_PREFIX + validate_agency_code(code)


def agency_permissions(code: str) -> Permissions:
    """The agency's ``(configure, write, read)`` permissions, exactly as PROTOCOL 2 says.

    Nothing to configure; write only to ``axis.submit`` (so no publishing into an
    inbox through the default exchange, whose permission name is ``amq.default``);
    read only its own inbox, with the code's dots escaped so that ``A.B`` cannot
    read ``axis.inbox.AXB``.
    """
    escaped = re.escape(validate_agency_code(code))
    return r"^$", r"^axis\.submit$", rf"^axis\.inbox\.{escaped}$"


def hub_permissions() -> Permissions:
    """The hub user's ``(configure, write, read)`` permissions, as narrow as they go.

    What the hub does, and the permission RabbitMQ checks for it:

    - declares (and deletes) the exchanges, ``axis.inbound``, ``axis.quarantine`` and
      the inboxes: configure on each;
    - binds ``axis.inbound`` to ``axis.submit`` and each inbox to ``axis.deliver``:
      write on the queue, read on the exchange;
    - consumes ``axis.inbound``: read on it;
    - publishes to ``axis.deliver`` and, for quarantine, to the default exchange:
      write on ``axis.deliver`` and ``amq.default``.

    It can neither read an inbox nor ``axis.quarantine`` (that is for admins).
    """
    inbox = r"axis\.inbox\.[0-9A-Z.]{1,35}"
    configure = rf"^(axis\.submit|axis\.inbound|axis\.deliver|axis\.quarantine|{inbox})$"
    write = rf"^(amq\.default|axis\.deliver|axis\.inbound|{inbox})$"
    read = r"^(axis\.submit|axis\.deliver|axis\.inbound)$"
    return configure, write, read


def declare_hub_topology(channel: BlockingChannel) -> None:
    """Declare the hub's exchanges and queues over AMQP; safe to call again."""
    channel.exchange_declare(SUBMIT_EXCHANGE, exchange_type="fanout", durable=True)
    channel.queue_declare(INBOUND_QUEUE, durable=True, arguments=QUORUM)
    channel.queue_bind(INBOUND_QUEUE, SUBMIT_EXCHANGE, routing_key="")
    channel.exchange_declare(DELIVER_EXCHANGE, exchange_type="direct", durable=True)
    channel.queue_declare(QUARANTINE_QUEUE, durable=True, arguments=QUORUM)


def declare_inbox(channel: BlockingChannel, code: str) -> str:
    """Declare the agency's inbox over AMQP, bound to ``axis.deliver``; return its name."""
    queue = inbox_queue(code)
    channel.queue_declare(queue, durable=True, arguments=QUORUM)
    channel.queue_bind(queue, DELIVER_EXCHANGE, routing_key=code)
    return queue


def provision_hub(mgmt: Management, vhost: str) -> None:
    """Create the vhost if needed and declare the hub's topology through the API."""
    mgmt.create_vhost(vhost)
    mgmt.declare_exchange(vhost, SUBMIT_EXCHANGE, "fanout")
    mgmt.declare_queue(vhost, INBOUND_QUEUE, arguments=QUORUM)
    mgmt.bind_queue(vhost, SUBMIT_EXCHANGE, INBOUND_QUEUE, "")
    mgmt.declare_exchange(vhost, DELIVER_EXCHANGE, "direct")
    mgmt.declare_queue(vhost, QUARANTINE_QUEUE, arguments=QUORUM)


def provision_inbox(mgmt: Management, vhost: str, code: str) -> str:
    """Declare the agency's inbox through the API (hub topology must exist)."""
    queue = inbox_queue(code)
    mgmt.declare_queue(vhost, queue, arguments=QUORUM)
    mgmt.bind_queue(vhost, DELIVER_EXCHANGE, queue, code)
    return queue


def remove_inbox(mgmt: Management, vhost: str, code: str) -> None:
    """Delete the agency's inbox, its binding and any undelivered messages in it."""
    mgmt.delete_queue(vhost, inbox_queue(code))


def provision_hub_user(
    mgmt: Management,
    vhost: str,
    password: str,
    *,
    name: str = HUB_USER,
    tags: Iterable[str] = (),
) -> None:
    """Create (or update) the hub's own user with :func:`hub_permissions` on the vhost."""
    mgmt.put_user(name, password, tags=tags)
    mgmt.set_permissions(vhost, name, *hub_permissions())


def provision_agency_user(
    mgmt: Management,
    vhost: str,
    code: str,
    password: str,
    tags: Iterable[str] = (),
) -> None:
    """Create (or update) the agency's AMQP user, named by its code, with its permissions."""
    permissions = agency_permissions(code)
    mgmt.put_user(code, password, tags=tags)
    mgmt.set_permissions(vhost, code, *permissions)


def remove_agency_user(mgmt: Management, vhost: str, code: str) -> None:
    """Revoke the agency's access to the vhost; delete the user once it has no other.

    Users are broker-wide while a hub owns one vhost, so a user still holding
    permissions on another vhost (another hub sharing the broker) is kept.
    """
    validate_agency_code(code)
    mgmt.clear_permissions(vhost, code)
    if not mgmt.user_permissions(code):
        mgmt.delete_user(code)
