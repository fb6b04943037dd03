"""axis bench, in its quick mode: it runs end to end and reports sane figures (not timed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from axis import bench
from axis.broker.testing import BrokerEnv

pytestmark = pytest.mark.slow


def test_quick_bench_measures_every_phase(broker: BrokerEnv, tmp_path: Path) -> None:
    try:
        result = bench.run(
            tmp_path / "bench",
            documents=200,
            agencies=4,
            rate=50,
            latency_seconds=1,
            settle_seconds=0.5,
            broadcasts=2,
            soak_seconds=3,
            user_tags=(broker.user_tag,),
        )
    finally:
        with broker.management() as mgmt:
            mgmt.delete_vhost(bench.BENCH_VHOST)
    assert result["baseline_docs_per_s"] > 0 and result["hub_docs_per_s"] > 0
    assert result["ratio"] == pytest.approx(
        result["hub_docs_per_s"] / result["baseline_docs_per_s"], rel=0.01
    )
    assert (
        0
        < result["latency_ms"]["p50"]
        <= result["latency_ms"]["p95"]
        <= result["latency_ms"]["p99"]
    )
    assert result["router_cpu_ms_per_doc"] > 0 and result["peak_rss_mib"] > 0
    # The broker runs here: its CPU is counted too, for the relay's messages and the hub's.
    assert result["baseline_cpu_ms_per_msg"]["relay"] > 0
    assert result["baseline_cpu_ms_per_msg"]["broker"] > 0 and result["broker_cpu_ms_per_doc"] > 0
    assert result["agency_keys"] == "rsa"
    assert 0 <= result["in_hub_latency_ms"]["p50"] <= result["latency_ms"]["p50"]
    # Each broadcast reaches the 63 provinces, and each copy is timed.
    broadcast = result["broadcast_latency_ms"]
    assert broadcast["documents"] == 2 and broadcast["deliveries"] == 2 * 63
    assert 0 < broadcast["p50"] <= broadcast["p99"]
    memory = result["memory"]
    assert memory["documents"] == 150 and memory["lost"] == 0
    assert memory["rss_end_mib"] > 0 and len(memory["samples"]) >= 2
