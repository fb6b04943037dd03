"""One real hub for the adapter tests, and agencies with an SDK client of their own.

The hub is the one of ``tests/hub/conftest.py`` (router in a thread, its own vhost
and SQLite database), shared by the whole package: each test registers agencies of
its own, so tests never share an inbox.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from axis.broker.testing import BrokerEnv

# adapters_support.py sits beside this file; put it on sys.path whatever pytest's
# import mode (the same arrangement as tests/signing).
_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from adapters_support import hub_support  # noqa: E402


@pytest.fixture(scope="package")
def axis_hub(broker: BrokerEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A running hub shared by the adapter tests; its vhost is removed at the end."""
    folder = tmp_path_factory.mktemp("adapters-hub")
    the_hub = hub_support._start_hub(broker, folder, f"sqlite:///{folder / 'axis.db'}")
    try:
        yield the_hub
    finally:
        hub_support._stop_hub(the_hub)
