"""``axis bench``: the hub's throughput and latency against a null relay, in one run."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("bench")
@click.option(
    "--docs", "documents", type=click.IntRange(100, 1_000_000), default=5000, show_default=True
)
@click.option("--agencies", type=click.IntRange(2, 95), default=20, show_default=True)
@click.option(
    "--size",
    type=click.IntRange(1024, 20 * 1024 * 1024),
    default=8192,
    show_default=True,
    help="Approximate bytes per document.",
)
@click.option(
    "--workers", type=click.IntRange(1, 16), default=1, show_default=True, help="Router processes."
)
@click.option(
    "--rate",
    type=float,
    default=300.0,
    show_default=True,
    help="Offered load for the latency phase.",
)
@click.option(
    "--agency-keys",
    type=click.Choice(["rsa", "ec"]),
    default="rsa",
    show_default=True,
    help="The agencies' signing keys: RSA-2048 (as the government CA issues) or P-256.",
)
@click.option(
    "--broadcasts",
    type=click.IntRange(0, 1000),
    default=10,
    show_default=True,
    help="Documents to @provinces for the broadcast latency (0 skips; registers all 95).",
)
@click.option(
    "--soak",
    "soak_seconds",
    type=click.FloatRange(0, 86400),
    default=0,
    show_default=True,
    help="Seconds of steady load at --rate while sampling the hub's RSS (600 for the target).",
)
@click.option(
    "--database",
    "database_url",
    help="A PostgreSQL URL whose database the bench drops and recreates (default: SQLite).",
)
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench"),
    show_default=True,
    help="The bench hub's folder (made afresh).",
)
@click.option(
    "--latency-seconds",
    type=click.FloatRange(1, 3600),
    default=10.0,
    show_default=True,
    help="How long --rate is offered for the latency figures (after the drain has settled).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def bench(
    documents: int,
    agencies: int,
    size: int,
    workers: int,
    rate: float,
    agency_keys: str,
    broadcasts: int,
    soak_seconds: float,
    database_url: str | None,
    folder: Path,
    latency_seconds: float,
    as_json: bool,
) -> None:
    """Measure the hub against a null relay on the same broker, side by side.

    Uses the RabbitMQ vhosts 'axis-bench' and 'axis-bench-relay'.
    """
    from axis import bench as run_bench
    from axis.logs import configure

    configure("console", "warning")
    result = run_bench.run(
        folder.resolve(),
        documents=documents,
        agencies=agencies,
        size=size,
        workers=workers,
        rate=rate,
        latency_seconds=latency_seconds,
        agency_keys=agency_keys,
        broadcasts=broadcasts,
        soak_seconds=soak_seconds,
        database_url=database_url,
        report=lambda line: click.echo(f"axis bench: {line}", err=True),
    )
    if as_json:
        click.echo(json.dumps(result))
        return
    latency = result["latency_ms"]
    click.echo(
        f"baseline {result['baseline_docs_per_s']:,.0f}/s, hub {result['hub_docs_per_s']:,.0f}/s "
        f"(ratio {result['ratio']:.2f}), router CPU {result['router_cpu_ms_per_doc']:.2f} ms/doc, "
        f"peak RSS {result['peak_rss_mib']:.0f} MiB; "
        f"{_broker_cpu(result)}"
        f"latency at {latency['offered_docs_per_s']:.0f}/s: "
        f"p50 {latency['p50']} ms, p95 {latency['p95']} ms, p99 {latency['p99']} ms"
    )
    if "broadcast_latency_ms" in result:
        cast = result["broadcast_latency_ms"]
        click.echo(
            f"broadcast to @provinces: {cast['deliveries']} deliveries of {cast['documents']} "
            f"documents, p50 {cast['p50']} ms, p95 {cast['p95']} ms, p99 {cast['p99']} ms"
        )
    if "memory" in result:
        memory = result["memory"]
        click.echo(
            f"soak {memory['seconds']:.0f} s, {memory['documents']} documents, lost "
            f"{memory['lost']}: RSS {memory['rss_after_warmup_mib']} → {memory['rss_end_mib']} MiB "
            f"({memory['rss_growth_pct']:+.1f} %)"
        )


def _broker_cpu(result: dict) -> str:
    relay, broker = result["baseline_cpu_ms_per_msg"], result["broker_cpu_ms_per_doc"]
    if relay["broker"] is None or broker is None:
        return ""  # the broker runs on another machine
    return (
        f"CPU per message, relay {relay['relay']:.2f} + broker {relay['broker']:.2f} ms, "
        f"per document, router {result['router_cpu_ms_per_doc']:.2f} + broker {broker:.2f} ms; "
    )
