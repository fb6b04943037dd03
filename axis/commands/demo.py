"""``axis demo``: the national axis, live, on this machine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--docs",
    "documents",
    type=click.IntRange(10, 100_000),
    default=300,
    show_default=True,
    help="Documents the agencies send (statuses come on top).",
)
@click.option(
    "--agencies",
    type=click.IntRange(3, 95),
    default=95,
    show_default=True,
    help="How many of the 95 agencies take part.",
)
@click.option(
    "--workers", type=click.IntRange(1, 16), default=1, show_default=True, help="Router processes."
)
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="The demo hub's folder (made afresh).",
)
@click.option(
    "--keep", is_flag=True, help="Leave the hub running afterwards, to explore with the CLI."
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Seed of the simulated traffic."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def demo(
    documents: int, agencies: int, workers: int, folder: Path, keep: bool, seed: int, as_json: bool
) -> None:
    """Run a hub and up to 95 simulated agencies exchanging documents, then sum up.

    Uses the RabbitMQ vhost 'axis-demo' and the agencies' real codes as broker users:
    run it against a development broker.
    """
    from axis import demo as run_demo
    from axis.logs import configure

    configure("console", "warning")
    interactive = sys.stderr.isatty() and not as_json

    def progress(line: str) -> None:
        if interactive:
            click.echo(f"\r  {line}\x1b[K", nl=False, err=True)

    def report(line: str) -> None:
        click.echo(f"axis demo: {line}", err=True)

    summary = run_demo.run(
        folder.resolve(),
        documents=documents,
        agencies=agencies,
        workers=workers,
        keep=keep,
        seed=seed,
        progress=progress,
        report=report,
    )
    if interactive:
        click.echo("", err=True)
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
    else:
        _print_summary(summary)
    if keep:
        click.echo(
            f"\nThe hub is still running (pid {summary['hub_pid']}). Explore it:\n"
            f"  export AXIS_CONFIG={summary['folder']}/axis.toml\n"
            "  axis agency list; axis audit verify; axis status\n"
            f"Stop it with: kill {summary['hub_pid']}",
            err=True,
        )
    if summary["lost"] or not summary["audit_ok"]:
        sys.exit(1)


def _print_summary(s: dict) -> None:
    click.echo(f"\nAxis demo: {s['agencies']} agencies, {s['seconds']} s")
    click.echo(f"  documents sent {s['sent']}, accepted {s['accepted']}, rejected {s['rejected']}")
    click.echo(
        f"  deliveries {s['delivered']}, lost {s['lost']}, duplicates dropped {s['duplicates']}"
    )
    click.echo(
        f"  end-to-end latency p50 {s['latency_ms']['p50']} ms, p99 {s['latency_ms']['p99']} ms"
    )
    click.echo(
        f"  statuses received {s['statuses_received']}; documents completed (06) {s['completed']}, "
        f"still outstanding {s['outstanding']}"
    )
    if s["rejections"]:
        click.echo(
            "  rejections by code: " + ", ".join(f"{k} {v}" for k, v in s["rejections"].items())
        )
    click.echo("  top senders:    " + ", ".join(f"{c} {n}" for c, n in s["top_senders"]))
    click.echo("  top recipients: " + ", ".join(f"{c} {n}" for c, n in s["top_recipients"]))
    click.echo(f"  audit trail {s['audit']}")
    if s.get("example_document_id"):
        click.echo(
            f"\nFollow the directive to the 63 provinces:\n"
            f"  AXIS_CONFIG={s['folder']}/axis.toml .venv/bin/axis audit trail "
            f"'{s['example_document_id']}'"
        )
