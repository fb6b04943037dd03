"""The schemas package root: its public API and the example in its docstring."""

from __future__ import annotations

import doctest

import schemas


def test_every_public_name_is_importable_from_the_package_root() -> None:
    missing = [name for name in schemas.__all__ if not hasattr(schemas, name)]
    assert missing == []


def test_the_package_docstring_example_runs() -> None:
    result = doctest.testmod(schemas, verbose=False)
    assert result.attempted > 0 and result.failed == 0
