"""Namespaces and the small reading/writing helpers the document modules share."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from lxml import etree

from axis.rejections import SchemaInvalid
from schemas.xml import parse, text_of

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
HUB_NS = "urn:axis:hub:1"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"

EDXML_NSMAP = {"edXML": EDXML_NS}
HUB_NSMAP = {None: HUB_NS}

_SHORT_PREFIXES = {EDXML_NS: "edXML", HUB_NS: "axis", DSIG_NS: "ds"}


def short_tag(tag: str) -> str:
    """``{ns}Name`` as ``prefix:Name``, to keep error messages readable."""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        prefix = _SHORT_PREFIXES.get(ns)
        return f"{prefix}:{local}" if prefix else f"{{{ns}}}{local}"
    return tag


def shorten_namespaces(message: str) -> str:
    """Replace Clark-notation namespaces in ``message`` with the usual prefixes."""
    for ns, prefix in _SHORT_PREFIXES.items():
        message = message.replace(f"{{{ns}}}", f"{prefix}:")
    return message


def root_of(data: bytes | etree._Element, max_bytes: int) -> etree._Element:
    """Parse ``data`` with the hardened parser, or accept an already parsed root."""
    if isinstance(data, etree._Element):
        return data
    return parse(data, max_bytes=max_bytes)


class Writer:
    """Builds elements in one namespace."""

    def __init__(self, namespace: str) -> None:
        self.ns = namespace

    def q(self, name: str) -> str:
        """The qualified tag for ``name`` in this namespace."""
        return f"{{{self.ns}}}{name}"

    def sub(self, parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
        """Append a child ``name`` with ``text``."""
        el = etree.SubElement(parent, self.q(name))
        if text is not None:
            el.text = text
        return el

    def opt(self, parent: etree._Element, name: str, text: str | None) -> None:
        """Append a child only when ``text`` is not None (an empty string stays, as empty)."""
        if text is not None:
            self.sub(parent, name, text)


class Fields:
    """The children of one element in one namespace, indexed by local name in one pass.

    ``find()`` goes through lxml's ElementPath on every call, which costs microseconds
    the router's hot path does not have; one pass over the children does not.
    Children in other namespaces (``ds:Signature``) and processing instructions are
    skipped. The schema guarantees the shape, but a caller may read a tree it did not
    validate, so what is missing raises SchemaInvalid rather than a TypeError.
    """

    __slots__ = ("_by_name", "_parent")

    def __init__(self, parent: etree._Element, namespace: str) -> None:
        self._parent = parent
        prefix = f"{{{namespace}}}"
        cut = len(prefix)
        by_name: dict[str, list[etree._Element]] = {}
        for child in parent:
            tag = child.tag
            if isinstance(tag, str) and tag.startswith(prefix):
                by_name.setdefault(tag[cut:], []).append(child)
        self._by_name = by_name

    @property
    def by_name(self) -> dict[str, list[etree._Element]]:
        """Every child, by local name, in document order (do not modify)."""
        return self._by_name

    def child(self, name: str) -> etree._Element:
        """The required child ``name``."""
        found = self._by_name.get(name)
        if not found:
            raise SchemaInvalid(f"{short_tag(self._parent.tag)} has no {name}")
        return found[0]

    def opt_child(self, name: str) -> etree._Element | None:
        """The optional child ``name``."""
        found = self._by_name.get(name)
        return found[0] if found else None

    def children(self, name: str) -> list[etree._Element]:
        """Every child ``name``, in document order."""
        return self._by_name.get(name, [])

    def text(self, name: str) -> str:
        """The full text of the required child ``name``."""
        return text_of(self.child(name)) or ""

    def opt_text(self, name: str) -> str | None:
        """The full text of the optional child ``name``, or None when absent."""
        found = self._by_name.get(name)
        return text_of(found[0]) if found else None


def format_datetime(value: datetime) -> str:
    """A timezone-aware datetime as UTC with microseconds: ``2026-11-20T01:02:03.000004Z``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime {value!r} has no timezone; Axis writes UTC only")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_datetime(text: str) -> datetime:
    """An xs:dateTime with an explicit offset, as an aware UTC datetime."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SchemaInvalid(f"{text!r} is not a dateTime") from None
    if value.tzinfo is None:
        raise SchemaInvalid(f"dateTime {text!r} has no timezone offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:30:00+01:00 is before year 1 in UTC
        raise SchemaInvalid(f"dateTime {text!r} is out of range in UTC") from None


VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
"""The zone of every date and timestamp edXML carries (UTC+7, no daylight saving)."""


def format_date(value: date) -> str:
    """A date as edXML writes it: ``yyyy/MM/dd``."""
    return f"{value.year:04d}/{value.month:02d}/{value.day:02d}"


def parse_date(text: str) -> date:
    """An edXML date ``yyyy/MM/dd``; SchemaInvalid for another form or a day not in the calendar."""
    value = text.strip()
    if len(value) != 10 or value[4] != "/" or value[7] != "/":
        raise SchemaInvalid(f"{value!r} is not a date (yyyy/MM/dd)")
    try:
        return date(int(value[:4]), int(value[5:7]), int(value[8:]))
    except ValueError:
        raise SchemaInvalid(f"{value!r} is not a date in the calendar") from None


def format_timestamp(value: datetime) -> str:
    """An aware datetime as edXML writes it: ``yyyy/MM/dd HH:mm:ss`` in Vietnamese time."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime {value!r} has no timezone")
    return value.astimezone(VIETNAM).strftime("%Y/%m/%d %H:%M:%S")


def parse_timestamp(text: str) -> datetime:
    """An edXML timestamp ``yyyy/MM/dd HH:mm:ss`` (Vietnamese local time) as an aware datetime."""
    value = text.strip()
    try:
        naive = datetime.strptime(value, "%Y/%m/%d %H:%M:%S")
    except ValueError:
        raise SchemaInvalid(f"{value!r} is not a timestamp (yyyy/MM/dd HH:mm:ss)") from None
    moment = naive.replace(tzinfo=VIETNAM)
    try:
        moment.astimezone(UTC)  # the hub stores UTC
    except OverflowError:
        raise SchemaInvalid(f"timestamp {value!r} is out of range in UTC") from None
    return moment


def parse_int(text: str, what: str) -> int:
    """An integer field, or SchemaInvalid naming it."""
    try:
        return int(text.strip())
    except ValueError:
        raise SchemaInvalid(f"{what} {text!r} is not an integer") from None
