"""schemas.samples: realistic, valid, deterministic sample documents."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest

from schemas import Priority, parse_edoc, to_bytes, validate
from schemas.samples import SUBJECTS, sample_edoc, sample_status
from schemas.xml import parse

NOW = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


def test_samples_are_deterministic_given_rng_and_now() -> None:
    first = sample_edoc(
        "000.00.00.G22", ["000.00.00.H41"], rng=random.Random(7), now=NOW, size=5000
    )
    again = sample_edoc(
        "000.00.00.G22", ["000.00.00.H41"], rng=random.Random(7), now=NOW, size=5000
    )
    assert to_bytes(first) == to_bytes(again)


def test_samples_are_valid_vietnamese_documents() -> None:
    rng = random.Random(1)
    for _ in range(30):
        edoc = sample_edoc("000.00.00.G22", ["000.00.00.H41", "@provinces"], rng=rng, now=NOW)
        assert validate(parse(to_bytes(edoc))) == "edoc"
        assert edoc.subject in SUBJECTS and edoc.type_name
        assert edoc.promulgation_date == date(2026, 11, 20)


@pytest.mark.parametrize("size", [4_000, 8_192, 65_536, 1_000_000])
def test_size_pads_the_serialized_document_to_about_that_size(size: int) -> None:
    edoc = sample_edoc("000.00.00.G22", ["000.00.00.H41"], size=size, rng=random.Random(2))
    data = to_bytes(edoc)
    assert size - 4 <= len(data) <= size
    assert edoc.attachments[0].data.startswith(b"%PDF-")
    assert parse_edoc(data) == edoc


def test_a_size_below_the_bare_document_adds_no_attachment() -> None:
    edoc = sample_edoc("000.00.00.G22", ["000.00.00.H41"], size=100, rng=random.Random(3))
    assert edoc.attachments == ()


def test_explicit_fields_are_used() -> None:
    edoc = sample_edoc(
        "000.00.00.H41",
        ["000.00.00.G22"],
        document_number=77,
        subject="Về việc thử nghiệm",
        priority=3,
        due_date=date(2026, 12, 1),
        rng=random.Random(4),
        now=NOW,
    )
    assert edoc.document_id.startswith("000.00.00.H41,2026/11/20,77/")
    assert edoc.subject == "Về việc thử nghiệm"
    assert edoc.priority is Priority.FLASH and edoc.due_date == date(2026, 12, 1)


def test_a_sample_status_answers_its_document() -> None:
    edoc = sample_edoc("000.00.00.G22", ["000.00.00.H41"], rng=random.Random(5), now=NOW)
    status = sample_status("000.00.00.H41", edoc, now=NOW)
    assert status.document_id == edoc.document_id and status.document_sender == "000.00.00.G22"
    assert validate(parse(to_bytes(status))) == "status"
