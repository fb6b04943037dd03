"""What the SDK raises, and how a hub rejection becomes a typed exception.

:class:`Rejected` is raised by :meth:`~adapters.AgencyClient.send` when the hub
refuses a document. Each PROTOCOL code has its own subclass that is also the
matching :mod:`axis.rejections` class, so either spelling catches it::

    try:
        client.send(edoc)
    except axis.rejections.UnknownRecipient as exc:   # or adapters.Rejected
        print(exc.code, exc.reason, exc.rejection.receipt_id)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from axis.rejections import BY_CODE, Rejection

if TYPE_CHECKING:
    from adapters.client import SendResult
    from schemas import AxisRejection
    from signing import VerifiedSignature


class AxisClientError(Exception):
    """Base of the SDK's own errors (not the hub's rejections)."""


class BrokerUnavailable(AxisClientError, ConnectionError):
    """The broker could not be reached within the client's ``reconnect_timeout``."""


class AccessRefused(AxisClientError, PermissionError):
    """The broker refused the agency's login or an operation: configuration, not luck.

    The client does not retry these (a wrong password does not get better).
    """


class BrokerUntrusted(AccessRefused):
    """The broker's TLS certificate did not verify against ``tls_ca_file``, or not
    for the host name connected to: either the wrong CA is configured or this is not
    the hub's broker. The client does not retry and never sends the password.
    """


class AnswerTimeout(AxisClientError, TimeoutError):
    """No answer from the hub in time; the send is still pending (see ``.result``).

    The document was confirmed by the broker, so it is not lost: the hub will
    answer, and :meth:`~adapters.AgencyClient.wait` can be called again.
    """

    def __init__(self, result: SendResult, waited: float) -> None:
        super().__init__(f"no answer for message {result.message_id} after {waited:.1f} s")
        self.result = result


class AnswerInvalid(AxisClientError):
    """The hub's answer did not verify against the configured hub certificate or trust.

    Usually a misconfigured ``hub_certificate``; never treat the send as accepted.
    """

    def __init__(self, message_id: str, error: Exception) -> None:
        super().__init__(f"the answer to message {message_id} did not verify: {error}")
        self.message_id = message_id
        self.error = error


class DeliveryInvalid(AxisClientError):
    """A delivery failed the end-to-end check; its content must not be used.

    ``error`` is the :class:`~axis.rejections.Rejection` that explains why
    (``SignatureInvalid``, ``CertUntrusted``, ``SenderMismatch``...).
    """

    def __init__(self, receipt_id: str | None, error: Exception) -> None:
        super().__init__(f"delivery {receipt_id} failed verification: {error}")
        self.receipt_id = receipt_id
        self.error = error


class Rejected(Rejection):
    """The hub refused a document: ``code``, ``reason`` and the signed ``rejection``.

    Never instantiated directly: :func:`rejected` picks the subclass for the code,
    which also derives from the :mod:`axis.rejections` class of that code.
    """

    rejection: AxisRejection
    body: bytes
    hub: VerifiedSignature | None

    def __init__(
        self, rejection: AxisRejection, body: bytes, hub: VerifiedSignature | None = None
    ) -> None:
        super().__init__(rejection.reason)
        self.rejection = rejection
        self.body = body
        self.hub = hub

    @property
    def message_id(self) -> str | None:
        """The message id of the refused message, as the hub read it."""
        return self.rejection.message_id

    @property
    def receipt_id(self) -> str:
        """The hub's id for this rejection (its audit record)."""
        return self.rejection.receipt_id


def _subclass(base: type[Rejection]) -> type[Rejected]:
    # Rejected first in the bases: its __init__ takes the AxisRejection, then hands
    # the reason on to Rejection.__init__ through the MRO.
    name = f"Rejected{base.__name__}"
    cls = type(name, (Rejected, base), {"__doc__": f"The hub refused with {base.code}."})
    cls.__module__ = __name__
    return cls


REJECTED: dict[str, type[Rejected]] = {code: _subclass(cls) for code, cls in BY_CODE.items()}
"""The :class:`Rejected` subclass for every PROTOCOL rejection code."""


def rejected(
    rejection: AxisRejection, body: bytes, hub: VerifiedSignature | None = None
) -> Rejected:
    """The typed exception for a hub ``rejection`` (e.g. ``RejectedUnknownRecipient``)."""
    return REJECTED[rejection.code](rejection, body, hub)
