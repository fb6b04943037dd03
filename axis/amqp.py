"""AMQP connection parameters from configuration, TLS included."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

import pika

from axis.config import BrokerSection, ConfigError

JOIN_UP_TO = 128 * 1024
"""The largest message whose frames :class:`SelectConnection` joins into one write."""


class SelectConnection(pika.SelectConnection):
    """pika's asynchronous connection, writing each message's frames with one send.

    pika hands its transport a message's frames (method, header, body) one by one,
    and the transport sends each with a ``send(2)`` of its own: with TCP_NODELAY, a
    publish was three system calls and three segments for the broker to read.
    Joined, a message goes out in one. Only up to :data:`JOIN_UP_TO`: the transport
    copies what a partial send leaves of a write, and a multi-megabyte write would
    be copied again on every partial send. (Overrides the one place pika's
    ``Connection`` emits frames; ``tests/core/test_amqp.py`` notices if that moves.)
    """

    def _output_marshaled_frames(self, marshaled_frames: Sequence[bytes]) -> None:
        if len(marshaled_frames) < 2 or sum(map(len, marshaled_frames)) > JOIN_UP_TO:
            super()._output_marshaled_frames(marshaled_frames)
            return
        data = b"".join(marshaled_frames)
        self.bytes_sent += len(data)
        self.frames_sent += len(marshaled_frames)
        self._adapter_emit_data(data)


def tls_context(broker: BrokerSection) -> ssl.SSLContext:
    """The TLS context of an ``amqps://`` connection to ``broker``.

    It verifies the broker's certificate and host name against ``tls_ca_file``
    (the system's trust store when none is set) and presents ``tls_cert_file`` /
    ``tls_key_file`` as the client certificate when one is configured. A file that
    cannot be read raises :class:`ConfigError` naming its key.
    """
    key = "broker.tls_ca_file"
    try:
        context = ssl.create_default_context(
            cafile=str(broker.tls_ca_file) if broker.tls_ca_file else None
        )
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if broker.tls_cert_file:
            key = "broker.tls_cert_file"
            context.load_cert_chain(
                str(broker.tls_cert_file), str(broker.tls_key_file) if broker.tls_key_file else None
            )
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot load the TLS file: {reason}", key=key) from None
    return context


def parameters(
    broker: BrokerSection,
    *,
    user: str | None = None,
    password: str | None = None,
    name: str = "axis",
) -> pika.ConnectionParameters:
    """Connection parameters for ``broker``, as the hub's user unless another is given.

    ``amqps://`` URLs get the context of :func:`tls_context`. Credentials never go
    into the URL, so they never reach a log line.
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
        params.ssl_options = pika.SSLOptions(tls_context(broker), split.hostname)
    return params
