"""AMQP connection parameters from configuration, TLS included."""

from __future__ import annotations

import ssl
from urllib.parse import quote, urlsplit

import pika

from axis.config import BrokerSection


def parameters(
    broker: BrokerSection,
    *,
    user: str | None = None,
    password: str | None = None,
    name: str = "axis",
) -> pika.ConnectionParameters:
    """Connection parameters for ``broker``, as the hub's user unless another is given.

    ``amqps://`` URLs get a TLS context verifying the broker against
    ``tls_ca_file`` (or the system store), with a client certificate when one is
    configured. Credentials never go into the URL, so they never reach a log line.
    """
    split = urlsplit(broker.url)
    tls = split.scheme == "amqps"
    port = split.port or (5671 if tls else 5672)
    url = f"{split.scheme}://{split.hostname}:{port}/{quote(broker.vhost, safe='')}"
    params = pika.URLParameters(url)
    params.credentials = pika.PlainCredentials(
        user or broker.user, broker.secret() if password is None else password
    )
    params.heartbeat = broker.heartbeat
    params.blocked_connection_timeout = 60
    params.connection_attempts = 1
    params.client_properties = {"connection_name": name}
    if tls:
        context = ssl.create_default_context(
            cafile=str(broker.tls_ca_file) if broker.tls_ca_file else None
        )
        if broker.tls_cert_file:
            context.load_cert_chain(
                str(broker.tls_cert_file), str(broker.tls_key_file) if broker.tls_key_file else None
            )
        params.ssl_options = pika.SSLOptions(context, split.hostname)
    return params
