"""Structured logging: key-value events, JSON in production, readable on a terminal.

Events never carry document contents or secrets: identifiers, codes and counts only.
:func:`redact_secrets` enforces the second half as defence in depth, in every
configuration: a value under a secret-sounding key, a PEM private key and the
password of a URL never reach the output, whichever code logged them.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

REDACTED = "[redacted]"

# Substrings of a key (lower case, "-" read as "_") whose value is a secret.
_SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "credential",
    "authorization",
    "private_key",
    "privatekey",
    "api_key",
    "apikey",
)
_PEM_PRIVATE_KEY = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.DOTALL
)
# scheme://user:password@host -> scheme://user:[redacted]@host
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^/\s@]+(?=@)")
_secret_keys: dict[str, bool] = {}


def is_secret_key(key: str) -> bool:
    """Whether a log key names a secret (``password``, ``amqp_password``, ``api-token`` ...)."""
    known = _secret_keys.get(key)
    if known is None:
        folded = key.lower().replace("-", "_")
        known = _secret_keys[key] = any(part in folded for part in _SECRET_KEY_PARTS)
    return known


def redact_text(text: str) -> str:
    """``text`` with PEM private keys and URL passwords replaced by ``[redacted]``."""
    if "PRIVATE KEY-----" in text:
        text = _PEM_PRIVATE_KEY.sub(REDACTED, text)
    if "://" in text and "@" in text:
        text = _URL_PASSWORD.sub(lambda m: m.group("head") + REDACTED, text)
    return text


def _redact_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes):
        return value if b"PRIVATE KEY-----" not in value else REDACTED
    if depth >= 4:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_secret_key(k) else _redact_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, Sequence):
        return [_redact_value(v, depth + 1) for v in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: blank secrets out of an event before it is rendered.

    A value whose key names a secret (see :func:`is_secret_key`) becomes
    ``[redacted]`` whatever it is; in every other string (the rendered exception
    included) PEM private keys and URL passwords are replaced. Nested dicts and
    lists are searched a few levels deep.
    """
    for key, value in event_dict.items():
        if is_secret_key(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            if "PRIVATE KEY-----" in value or "://" in value:
                event_dict[key] = redact_text(value)
        elif isinstance(value, bytes | Mapping) or (
            isinstance(value, Sequence) and not isinstance(value, str)
        ):
            event_dict[key] = _redact_value(value)
    return event_dict


def configure(fmt: str = "console", level: str = "info") -> None:
    """Set up structlog for ``fmt`` (``console`` or ``json``) at ``level``, on stderr."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            # After format_exc_info, so a rendered traceback is searched too.
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
    logging.getLogger("pika").setLevel(logging.CRITICAL)


class RedactingFilter(logging.Filter):
    """The same redaction for records of the standard ``logging`` (libraries' warnings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
