"""axis.service: how one router process is assembled and started."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from axis import service
from axis.config import from_mapping


def test_a_router_starts_with_its_start_up_objects_frozen_out_of_the_collector(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A full collection would otherwise walk every module and schema object each
    time it runs, and hold up the batch it falls in for tens of milliseconds."""
    seen: dict[str, Any] = {}

    class Pipeline:
        """Stands for what build_pipeline makes: start-up objects."""

    class FakeRouter:
        def __init__(self, config: Any, pipeline: Any) -> None:
            seen["frozen_while_building"] = gc.get_freeze_count()
            self.pipeline = pipeline

        def run(self) -> None:
            seen["frozen"] = gc.get_freeze_count()
            # Frozen objects are out of every generation the collector walks.
            seen["pipeline_walked"] = any(o is self.pipeline for o in gc.get_objects())

    monkeypatch.setattr(service, "Router", FakeRouter)
    monkeypatch.setattr(service, "build_pipeline", lambda config, **_: Pipeline())
    monkeypatch.setattr(service.logs, "configure", lambda *args: None)
    config = from_mapping(
        {"database": {"url": f"sqlite:///{tmp_path / 'axis.db'}"}}, base_dir=tmp_path, env={}
    )
    gc.unfreeze()
    try:
        service.run_router(config)
    finally:
        gc.unfreeze()
    assert seen["frozen_while_building"] == 0
    assert seen["frozen"] > 1000
    assert not seen["pipeline_walked"]
