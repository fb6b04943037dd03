"""``axis audit export`` and ``axis audit check`` through the CLI, on a real hub's traffic.

Export runs against the hub's config; check runs as a process of its own in an empty
folder, with no config, no database and no broker: only the zip and the CA.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from axis.broker.testing import BrokerEnv
from cli import main

sys.path.insert(0, str(Path(__file__).parents[1] / "core" / "audit"))

from bundle_support import Traffic, hub_support, run_traffic

pytestmark = pytest.mark.integration
AXIS = Path(sys.executable).parent / "axis"


@pytest.fixture(scope="module")
def traffic(broker: BrokerEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    folder = tmp_path_factory.mktemp("cli-bundle-hub")
    hub = hub_support._start_hub(broker, folder, f"sqlite:///{folder / 'axis.db'}")
    try:
        yield run_traffic(hub)
    finally:
        hub_support._stop_hub(hub)


@pytest.fixture(scope="module")
def bundle(traffic: Traffic, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "evidence.zip"
    config = traffic.hub.config.source
    result = CliRunner().invoke(
        main, ["--config", str(config), "audit", "export", traffic.document_id, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"events of {traffic.document_id}" in result.output
    return out


def check(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``axis audit check`` as a process of its own, in ``folder``, with no hub config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AXIS_")}
    return subprocess.run(
        [str(AXIS), "audit", "check", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def offline(traffic: Traffic, bundle: Path, tmp_path: Path) -> Path:
    """An empty folder holding only the bundle and the CA certificate."""
    (tmp_path / "evidence.zip").write_bytes(bundle.read_bytes())
    (tmp_path / "ca.pem").write_bytes(
        (traffic.hub.config.source.parent / "pki/ca.pem").read_bytes()
    )
    return tmp_path


def test_check_prints_the_story_in_vietnam_time_and_exits_0(
    traffic: Traffic, offline: Path
) -> None:
    result = check(offline, "evidence.zip", "--trust", "ca.pem")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"evidence bundle OK: {traffic.document_id}")
    for code in traffic.recipients:
        line = next(line for line in out.splitlines() if line.startswith(f"  recipient   {code}"))
        assert "delivered 20" in line and "+07:00" in line
    assert "06  " in out and "Đã hoàn thành" in out
    assert "REVOKED" in out and "note        revoked by" in out
    assert "chain head #" in out


def test_check_json_and_utc(traffic: Traffic, offline: Path) -> None:
    result = check(offline, "evidence.zip", "--trust", "ca.pem", "--json", "--utc")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["document_id"] == traffic.document_id
    assert report["received_at"].endswith("Z")
    assert [r["recipient"] for r in report["recipients"]] == list(traffic.recipients)
    assert all(r["delivered_at"].endswith("Z") for r in report["recipients"])
    assert sorted(s["code"] for s in report["statuses"]) == ["01", "01", "06"]


def test_a_tampered_bundle_exits_1_naming_what_failed(offline: Path) -> None:
    source = offline / "evidence.zip"
    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    files["receipt.xml"] = files["receipt.xml"].replace(b"<AuditSeq>", b"<AuditSeq>9", 1)
    with zipfile.ZipFile(offline / "tampered.zip", "w") as archive:
        for name, body in files.items():
            archive.writestr(name, body)
    result = check(offline, "tampered.zip", "--trust", "ca.pem")
    assert result.returncode == 1
    assert result.stderr.startswith("evidence bundle INVALID: receipt.xml: its SHA-256 differs")
    assert "Traceback" not in result.stderr
    result = check(offline, "tampered.zip", "--trust", "ca.pem", "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["file"] == "receipt.xml"


def test_a_file_that_is_not_a_bundle_exits_1_without_a_trace(offline: Path) -> None:
    (offline / "junk.zip").write_bytes(b"PK\x03\x04 this is not a zip")
    result = check(offline, "junk.zip", "--trust", "ca.pem")
    assert result.returncode == 1
    assert "not a readable zip file" in result.stderr and "Traceback" not in result.stderr


def test_export_of_an_unknown_document_exits_1(traffic: Traffic, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "--config",
            str(traffic.hub.config.source),
            "audit",
            "export",
            "000.00.00.G22,2026/01/01,1/NONE",
            "--out",
            str(tmp_path / "x.zip"),
        ],
    )
    assert result.exit_code == 1 and "no audit event names" in result.output
    assert not (tmp_path / "x.zip").exists()
