"""Helpers for tests that run against a real RabbitMQ.

:class:`BrokerEnv` describes a throw-away vhost and how to reach it as an admin; the
suite's ``broker`` fixture (``tests/conftest.py``) builds one per test session. It
lives here, not in the conftest, so tests can import it for their type hints.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote, urlsplit, urlunsplit

from axis.broker.management import Management

__all__ = ["BrokerEnv", "amqp_url_with_vhost"]


def amqp_url_with_vhost(url: str, vhost: str) -> str:
    """``url`` pointing at ``vhost`` instead of its own; ``/`` in the name becomes ``%2F``."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), parts.query, ""))


@dataclass(frozen=True)
class BrokerEnv:
    """A RabbitMQ vhost owned by one test session, and how to reach it as an admin.

    ``user_tag`` marks every RabbitMQ user the session creates: users are
    broker-wide, so the session deletes them by this tag when it ends.
    """

    amqp_url: str
    management_url: str
    admin_user: str
    admin_password: str
    vhost: str
    user_tag: str

    def management(self, *, timeout: float = 60) -> Management:
        """A new management API client as the admin; close it (use ``with``)."""
        return Management(
            self.management_url, self.admin_user, self.admin_password, timeout=timeout
        )

    def amqp_url_for(self, user: str, password: str) -> str:
        """AMQP URL of this vhost logging in as ``user`` instead of the admin."""
        parts = urlsplit(self.amqp_url)
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    def derive(self, suffix: str) -> BrokerEnv:
        """Create the vhost ``<vhost>-<suffix>`` for a test that needs one to itself.

        The session's vhost is shared by every test, and what one test leaves in a
        shared queue (messages in ``axis.inbound``, say) reaches the next consumer.
        The session deletes derived vhosts at its end too.
        """
        vhost = f"{self.vhost}-{suffix}"
        with self.management() as mgmt:
            mgmt.create_vhost(vhost)
            mgmt.set_permissions(vhost, self.admin_user, ".*", ".*", ".*")
        return replace(self, amqp_url=amqp_url_with_vhost(self.amqp_url, vhost), vhost=vhost)

    def unique_code(self, suffix: str) -> str:
        """A valid agency code unique to this session, e.g. ``T1A2B3C4D.<suffix>``.

        Agency users are named by their code and outlive any vhost, so two sessions
        on one broker must not share codes.
        """
        return f"T{self.user_tag.rsplit('-', 1)[-1].upper()}.{suffix}"
