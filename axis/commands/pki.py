"""``axis pki``: the development PKI (a CA, agency certificates, revocation)."""

from __future__ import annotations

import click


@click.group("pki")
def group() -> None:
    """Development PKI for demos and tests (production uses the government CA)."""
