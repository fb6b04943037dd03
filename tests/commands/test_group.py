"""``axis group`` through the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from axis import registry
from axis.db import make_engine
from axis.hubdir import init_hub
from cli import main
from signing.pki import make_ca, make_leaf


@pytest.fixture
def hub_config(tmp_path: Path) -> Path:
    """A hub without broker: groups live in the database only."""
    config = init_hub(tmp_path / "hub", broker=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'hub' / 'axis.db'}")
    ca = make_ca()
    # Agencies registered straight in the registry: no broker needed for groups.

    with engine.begin() as conn:
        for code in ("000.00.00.H01", "000.00.00.H02", "000.00.00.G01"):
            registry.add_agency(conn, code, code, "province", datetime.now(UTC))
            registry.add_certificate(conn, code, make_leaf(code, ca).certificate, datetime.now(UTC))
    engine.dispose()
    return config


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), "group", *args])


def test_add_list_remove_members_and_group(hub_config: Path) -> None:
    added = run(
        hub_config, "add", "@north", "000.00.00.H01", "000.00.00.H02", "--description", "North"
    )
    more = run(hub_config, "add", "north", "000.00.00.G01")

    assert added.exit_code == 0 and "@north: 2 member(s)" in added.stdout
    assert "@north: 3 member(s)" in more.stdout
    groups = {g["name"]: g for g in json.loads(run(hub_config, "list", "--json").stdout)}
    assert groups["north"] == {
        "name": "north",
        "description": "North",
        "members": ["000.00.00.G01", "000.00.00.H01", "000.00.00.H02"],
    }
    assert "@north (3) — North" in run(hub_config, "list").stdout

    assert run(hub_config, "remove", "north", "000.00.00.G01").exit_code == 0
    groups = {g["name"]: g for g in json.loads(run(hub_config, "list", "--json").stdout)}
    assert groups["north"]["members"] == ["000.00.00.H01", "000.00.00.H02"]

    assert "removed group @north" in run(hub_config, "remove", "north").stdout
    assert json.loads(run(hub_config, "list", "--json").stdout) == []
    assert "no group @north" in run(hub_config, "remove", "north").stdout


def test_unknown_agency_or_bad_name_exit_1(hub_config: Path) -> None:
    unknown = run(hub_config, "add", "north", "000.00.00.X99")
    bad = run(hub_config, "add", "North Side", "000.00.00.H01")

    assert unknown.exit_code == 1 and "not registered" in unknown.stderr
    assert bad.exit_code == 1 and "not a group name" in bad.stderr
    assert json.loads(run(hub_config, "list", "--json").stdout) == []
