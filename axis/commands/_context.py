"""Helpers shared by the admin commands: config, database, broker, errors, output.

Exit codes are the same for every command: 0 done, 1 the operation failed (message
on stderr), 2 the configuration (or the command line) is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import click

from axis.admin import Admin, AdminError, as_json
from axis.broker.management import Management, ManagementError
from axis.config import Config, ConfigError, load
from axis.hubdir import HubDirError
from axis.logs import configure as configure_logs
from axis.registry import RegistryError

P = ParamSpec("P")
R = TypeVar("R")

EXPECTED_ERRORS = (AdminError, RegistryError, ManagementError, HubDirError, FileExistsError)


class ConfigProblem(click.ClickException):
    """A configuration error: exit status 2, like a usage error, without the usage text."""

    exit_code = 2


def load_config(ctx: click.Context) -> Config:
    """The configuration chosen by ``--config`` / ``$AXIS_CONFIG`` / ``./axis.toml``."""
    obj = ctx.find_root().obj or {}
    try:
        return load(obj.get("config_path"))
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None


def quiet_logs(config: Config) -> None:
    """Log events to stderr, warnings and worse only: stdout is for the command's output."""
    level = config.log.level if config.log.level in ("warning", "error") else "warning"
    configure_logs(config.log.format, level)


def management(config: Config) -> Management:
    """A management API client as configured; close it after use (``with``)."""
    try:
        password = config.management.secret()
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None
    return Management(config.management.url, config.management.user, password)


@contextmanager
def admin(ctx: click.Context) -> Iterator[Admin]:
    """An :class:`~axis.admin.Admin` for the configured hub, closed on exit."""
    config = load_config(ctx)
    quiet_logs(config)
    try:
        handle = Admin.from_config(config)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None
    with handle:
        yield handle


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the expected failures of admin operations into a message and exit status 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            raise ConfigProblem(str(exc)) from None
        except EXPECTED_ERRORS as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def echo_json(value: Any) -> None:
    """Print ``value`` (dataclasses allowed) as one JSON document."""
    click.echo(json.dumps(as_json(value), ensure_ascii=False, indent=2))
