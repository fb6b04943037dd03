"""``axis serve``: run the hub's routers."""

from __future__ import annotations

import sys

import click

from axis.commands._context import ConfigProblem, load_config
from axis.config import ConfigError


@click.command("serve")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Router processes on the one inbound queue (default: router.workers).",
)
@click.pass_context
def serve(ctx: click.Context, workers: int | None) -> None:
    """Route documents: consume axis.inbound until SIGTERM/SIGINT.

    Brings the database schema up to date and declares the broker topology first.
    Stopping finishes the messages in flight and exits 0.
    """
    import ssl

    import pika.exceptions

    from axis import service

    config = load_config(ctx)
    try:
        code = service.serve(config, workers)
    except ConfigError as exc:
        raise ConfigProblem(str(exc)) from None
    except (pika.exceptions.AMQPError, ssl.SSLError) as exc:
        # Only start-up talks to the broker outside the routers' reconnect loop.
        reason = str(exc) or type(exc).__name__
        raise click.ClickException(
            f"cannot connect to the broker at {config.broker.url} as {config.broker.user}: {reason}"
        ) from None
    sys.exit(code)
