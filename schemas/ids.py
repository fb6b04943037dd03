"""Identifiers: agency codes, groups, message ids and DocumentIds (EDXML.md 1.1, 4).

A DocumentId is either ``OrganId,yyyy/MM/dd,number/notation`` or opaque (a UUID);
the OrganId inside it is not always the sender's, so the hub keys documents by
(sender, DocumentId) and reads the parts only to show them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# The structured form; the notation may carry Vietnamese letters (VPCP-TTĐT).
_DOCUMENT_ID = re.compile(
    r"([0-9A-Z.]{1,35}),([0-9]{4})/([0-9]{2})/([0-9]{2}),([^\s/,]{1,32})/(\S{1,100})"
)
MAX_DOCUMENT_ID = 200
"""Mirrors DocumentIdType in edxml.xsd: printable text without spaces."""
_ANY_DOCUMENT_ID = re.compile(rf"[^\s\x00-\x1f\x7f]{{1,{MAX_DOCUMENT_ID}}}")
_ORGAN_ID = re.compile(r"[0-9A-Z.]{1,35}")
_GROUP_ID = re.compile(r"@[a-z0-9][a-z0-9\-]{0,31}")
MAX_MESSAGE_ID = 200
"""The longest message id the hub takes: it stores ids in 200-character columns
(``documents.message_id``, ``statuses.message_id``). A longer one made PostgreSQL
refuse the batch's insert, which the router took for a database outage and retried
forever, stalling the hub; it is now ``MALFORMED``, like any unusable id."""
_MESSAGE_ID = re.compile(rf"[!-~]{{1,{MAX_MESSAGE_ID}}}")


def is_organ_id(value: str) -> bool:
    """Whether ``value`` is a well-formed agency code."""
    return _ORGAN_ID.fullmatch(value) is not None


def is_document_id(value: str) -> bool:
    """Whether ``value`` can be a DocumentId: structured or opaque, no spaces, at most 200."""
    return _ANY_DOCUMENT_ID.fullmatch(value) is not None


def is_group_id(value: str) -> bool:
    """Whether ``value`` names a recipient group such as ``@provinces``."""
    return _GROUP_ID.fullmatch(value) is not None


def is_message_id(value: str | None) -> bool:
    """Whether ``value`` can be a MessageId/ReceiptId in hub messages: printable ASCII,
    no space, at most :data:`MAX_MESSAGE_ID` characters.

    An AMQP ``message_id`` is any short string; one that fails this cannot be put in
    an AxisReceipt, and should be left out of an AxisRejection (its MessageId is optional).
    """
    return value is not None and _MESSAGE_ID.fullmatch(value) is not None


@dataclass(frozen=True, order=True)
class DocumentId:
    """The parts of a DocumentId; ``str()`` gives the wire form."""

    organ_id: str
    date: date
    number: str
    notation: str

    @classmethod
    def read(cls, text: str) -> DocumentId | None:
        """The parts of a structured DocumentId, or None for an opaque one (a UUID)."""
        try:
            return cls.parse(text)
        except ValueError:
            return None

    @classmethod
    def parse(cls, text: str) -> DocumentId:
        """Split a wire DocumentId; raises ValueError when it is not well formed."""
        match = _DOCUMENT_ID.fullmatch(text)
        if match is None:
            raise ValueError(f"{text!r} is not a DocumentId (OrganId,yyyy/MM/dd,number/notation)")
        organ_id, year, month, day, number, notation = match.groups()
        try:
            when = date(int(year), int(month), int(day))
        except ValueError:
            raise ValueError(f"{text!r} has no valid date") from None
        return cls(organ_id, when, number, notation)

    @property
    def code(self) -> str:
        """``number/notation``, the document's printed number."""
        return f"{self.number}/{self.notation}"

    def __str__(self) -> str:
        return f"{self.organ_id},{self.date:%Y/%m/%d},{self.number}/{self.notation}"


def make_document_id(organ_id: str, when: date, number: str | int, notation: str) -> str:
    """The wire DocumentId of a document, e.g. ``000.00.00.G22,2026/11/20,101/VPCP-KSTT``.

    Raises ValueError when the parts cannot form a valid DocumentId.
    """
    text = f"{organ_id},{when.year:04d}/{when.month:02d}/{when.day:02d},{number}/{notation}"
    DocumentId.parse(text)
    return text
