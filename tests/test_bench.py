"""axis bench, in its quick mode: it runs end to end and reports sane figures (not timed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from axis import bench
from axis.broker.testing import BrokerEnv

pytestmark = pytest.mark.slow


def test_quick_bench_measures_baseline_hub_and_latency(broker: BrokerEnv, tmp_path: Path) -> None:
    try:
        result = bench.run(
            tmp_path / "bench",
            documents=200,
            agencies=4,
            rate=50,
            latency_seconds=1,
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
