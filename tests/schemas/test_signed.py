"""The schemas accept what the signing package produces: one trailing ds:Signature."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from schemas import (
    AxisReceipt,
    AxisRejection,
    Document,
    RecipientOutcome,
    parse_edoc,
    to_bytes,
    validate,
)
from schemas.samples import sample_edoc, sample_status
from schemas.xml import parse
from signing import pki, sign

NOW = datetime(2026, 11, 20, 1, 2, 3, tzinfo=UTC)
EDOC = sample_edoc("000.00.00.G22", ["000.00.00.H41"], size=4000, rng=random.Random(9), now=NOW)
DOCUMENTS: dict[str, Document] = {
    "edoc": EDOC,
    "status": sample_status("000.00.00.H41", EDOC, now=NOW),
    "receipt": AxisReceipt(
        "r-1",
        "m-1",
        "edoc",
        "000.00.00.G22",
        "a" * 64,
        NOW,
        1,
        "b" * 64,
        [RecipientOutcome("000.00.00.H41", "delivered", NOW)],
        EDOC.document_id,
    ),
    "rejection": AxisRejection("r-2", "SIGNATURE_INVALID", "chữ ký sai", NOW, 2, "c" * 64),
}


@pytest.fixture(scope="module")
def signer_key() -> pki.CertifiedKey:
    return pki.make_leaf("000.00.00.G22", pki.make_ca())


@pytest.mark.parametrize("kind", list(DOCUMENTS))
def test_a_signed_document_still_validates(kind: str, signer_key: pki.CertifiedKey) -> None:
    signed = sign(to_bytes(DOCUMENTS[kind]), signer_key.key, signer_key.certificate)
    assert b"Signature" in signed
    assert validate(parse(signed)) == kind


def test_a_signed_edoc_parses_to_the_same_document(signer_key: pki.CertifiedKey) -> None:
    signed = sign(to_bytes(EDOC), signer_key.key, signer_key.certificate)
    assert parse_edoc(signed) == EDOC
