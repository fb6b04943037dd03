"""axis demo: the live demo of the national axis loses nothing and its trail verifies."""

from __future__ import annotations

from pathlib import Path

import pytest

from axis import demo
from axis.broker.testing import BrokerEnv

pytestmark = pytest.mark.slow


def test_demo_of_200_documents_loses_nothing_and_the_audit_trail_verifies(
    broker: BrokerEnv, tmp_path: Path
) -> None:
    try:
        summary = demo.run(tmp_path / "demo", documents=200, user_tags=(broker.user_tag,))
    finally:
        with broker.management() as mgmt:
            mgmt.delete_vhost(demo.DEMO_VHOST)
    assert summary["lost"] == 0
    assert summary["audit_ok"] is True
    assert summary["sent"] >= 200
    assert summary["accepted"] + summary["rejected"] == summary["sent"]
    assert summary["rejected"] >= 3  # the demo sends a few invalid documents on purpose
    assert set(summary["rejections"]) <= {
        "SIGNATURE_INVALID",
        "UNKNOWN_RECIPIENT",
        "SENDER_MISMATCH",
        "DUPLICATE_CONFLICT",
    }
    assert (
        summary["delivered"] >= summary["accepted"] + 62
    )  # the @provinces directive alone gives 63
    assert summary["latency_ms"]["p50"] > 0
