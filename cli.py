"""The ``axis`` command: one click group, with one sub-group per concept."""

from __future__ import annotations

import click

from axis.commands import (
    agency,
    audit,
    audit_bundle,
    bench,
    bridge,
    db,
    demo,
    doc,
    doc_sign,
    group,
    init,
    pki,
    serve,
    status,
)


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="AXIS_CONFIG",
    help="The hub's axis.toml (default: $AXIS_CONFIG, then ./axis.toml).",
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """Axis: the national document interchange hub."""
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path


main.add_command(pki.group)
main.add_command(doc.group)
doc.group.add_command(doc_sign.sign)
doc.group.add_command(doc_sign.verify)
main.add_command(init.init)
main.add_command(db.group)
main.add_command(agency.group)
main.add_command(group.group)
main.add_command(status.status)
main.add_command(serve.serve)
main.add_command(audit.group)
audit.group.add_command(audit_bundle.export)
audit.group.add_command(audit_bundle.check)
main.add_command(demo.demo)
main.add_command(bench.bench)
main.add_command(bridge.group)

if __name__ == "__main__":
    main()
