"""The bad-input corpus of issue #7: hostile messages, each with the answer the hub owes it.

- :mod:`tests.corpus.cases`: the table (:data:`CASES`), one :class:`Case` per hostile
  message, with its builder, precondition and expected answer;
- :mod:`tests.corpus.build`: the primitives that craft hostile bodies from valid
  ones (byte and tree edits, re-signing, profile forgeries, encodings).

``tests/hub/test_corpus.py`` runs the table against one real ``axis serve``, alone
and under a steady stream of valid documents; ``tests/fuzz`` reuses the primitives.
``.venv/bin/python -m tests.corpus`` prints the table.
"""

from tests.corpus.cases import (
    ACCEPTED,
    CASES,
    OWN,
    QUARANTINED,
    Case,
    Party,
    Probe,
    World,
    shuffled,
)

__all__ = [
    "ACCEPTED",
    "CASES",
    "OWN",
    "QUARANTINED",
    "Case",
    "Party",
    "Probe",
    "World",
    "shuffled",
]
