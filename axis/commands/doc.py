"""``axis doc``: build, validate, sign and verify documents by hand."""

from __future__ import annotations

import click


@click.group("doc")
def group() -> None:
    """Build, validate, sign and verify edXML documents."""
