"""Property-based fuzzing of the parser, the schema checks, the verifier and the pipeline core.

The properties (one module each):

- ``test_parse.py``: for any bytes, :func:`schemas.xml.parse`, :func:`schemas.validate`,
  :func:`schemas.read_header` and the typed parsers either succeed or raise an
  :class:`axis.rejections.Rejection`, never another exception, within the deadline;
- ``test_verify.py``: a valid signed document, mutated (byte flips, insertions,
  deletions, truncation, duplicated slices and elements, attribute and text
  changes, comments, processing instructions...), never verifies unless the
  mutation left the signed content exactly as it was (for instance whitespace
  outside the root, a comment, a CDATA section, the quote style of an attribute);
  and the verifier's two fast paths agree with the slow, obviously-correct ones;
- ``test_pipeline.py``: :meth:`axis.pipeline.Pipeline.check` and
  :meth:`~axis.pipeline.Pipeline.authorize` decide any message, never reaching the
  "the hub could not process this message" branch that only a bug reaches.

Profiles (``hypothesis.settings``), chosen by ``HYPOTHESIS_PROFILE``, else ``ci``
when ``CI`` is set (as in ``.ci/run``), else ``dev``:

- ``dev``: 100 examples per test, for quick local runs;
- ``ci``: 200 examples per test;
- ``long``: 20,000 examples per test and a longer deadline, for a fuzzing session::

      HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/fuzz --hypothesis-show-statistics

  Every finding is kept as an ``@example`` or an explicit regression test.

The deadline (per example) is what catches a hang: a body that makes libxml2 or
the verifier spin fails the test instead of stalling it. It is generous because
CI machines are loaded; a real hang exceeds any deadline.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings

# Make ``tests.corpus`` importable whatever pytest's import mode; the project root
# holds only real packages, so it cannot shadow ``signing`` or ``schemas``.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

_COMMON = {
    "suppress_health_check": (HealthCheck.too_slow, HealthCheck.data_too_large),
    "print_blob": True,
}
settings.register_profile("dev", max_examples=100, deadline=timedelta(seconds=2), **_COMMON)
settings.register_profile("ci", max_examples=200, deadline=timedelta(seconds=2), **_COMMON)
settings.register_profile("long", max_examples=20_000, deadline=timedelta(seconds=10), **_COMMON)


def _profile() -> str:
    chosen = os.environ.get("HYPOTHESIS_PROFILE")
    if chosen:
        return chosen
    return "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"


settings.load_profile(_profile())
