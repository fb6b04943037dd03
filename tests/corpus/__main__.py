"""Print the corpus as a Markdown table: ``.venv/bin/python -m tests.corpus``."""

from __future__ import annotations

from tests.corpus import CASES


def main() -> None:
    """One row per case: id, expected answer, description, precondition."""
    print(f"{len(CASES)} cases\n")
    print("| id | expected | description | precondition |")
    print("|---|---|---|---|")
    for case in CASES:
        print(f"| `{case.id}` | {case.expect} | {case.description} | {case.precondition} |")


if __name__ == "__main__":
    main()
