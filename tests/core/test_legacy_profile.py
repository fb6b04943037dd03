"""The national SDK's legacy signature profile through the pipeline: accepted only before
``[signing] legacy_profile_until``, and marked wherever the hub records or answers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

import schemas
from axis import registry
from axis.audit import bundle
from axis.audit.query import StatsQuery, stats
from axis.authorize import AcceptEdoc
from axis.deliver import SIGNATURE_PROFILE
from axis.rejections import SignatureInvalid
from schemas._common import VIETNAM
from schemas.samples import sample_edoc
from signing import SignatureProfile, Signer, Verifier
from signing.pki import KeyAlgorithm, make_leaf
from tests.core.conftest import G22, H41, CoreHub

TODAY = datetime.now(UTC).astimezone(VIETNAM).date()


@pytest.fixture
def legacy_signer(core: CoreHub) -> Signer:
    """G22's RSA key and certificate (rsa-sha1 needs RSA), registered to G22."""
    leaf = make_leaf(G22, core.pki.ca, algo=KeyAlgorithm.RSA)
    with core.engine.begin() as conn:
        registry.add_certificate(conn, G22, leaf.certificate, datetime.now(UTC))
    return Signer(leaf.key, leaf.certificate, profile=SignatureProfile.LEGACY)


def legacy_until(core: CoreHub, until: date | None) -> None:
    core.pipeline.verifier = Verifier(core.pki.trust, legacy_until=until)


def send(core: CoreHub, signer: Signer) -> tuple:
    edoc = sample_edoc(G22, [H41], document_number=next(core._numbers))
    body = signer.sign(schemas.to_element(edoc))
    assert b"rsa-sha1" in body
    [item], outgoing = core.handle(core.inbound(body, G22))
    return item, outgoing


def test_a_legacy_document_is_accepted_before_the_sunset_and_marked_everywhere(
    core: CoreHub, legacy_signer: Signer
) -> None:
    legacy_until(core, TODAY + timedelta(days=1))
    item, outgoing = send(core, legacy_signer)
    assert isinstance(item.outcome, AcceptEdoc)
    [delivery] = [o for o in outgoing if o.type == "edoc"]
    assert delivery.headers[SIGNATURE_PROFILE] == "legacy"
    core.pipeline.confirm([item])
    assert core.receipt(item.receipt).signature_profile == "legacy"
    [detail] = core.rows(
        "SELECT detail FROM audit_events WHERE receipt_id = :r AND event = 'RECEIVED'",
        r=item.receipt_id,
    )
    assert json.loads(detail.detail)["signature_profile"] == "legacy"
    with core.engine.connect() as conn:
        report = stats(conn, StatsQuery(by="month"))
    assert {a.agency: a.legacy_signed for a in report.by_agency()}[G22] == 1


@pytest.mark.parametrize("until", [None, TODAY, TODAY - timedelta(days=30)])
def test_a_legacy_document_is_refused_when_the_policy_is_off_or_past_its_date(
    core: CoreHub, legacy_signer: Signer, until: date | None
) -> None:
    legacy_until(core, until)
    item, outgoing = send(core, legacy_signer)
    assert isinstance(item.outcome, SignatureInvalid)
    assert "legacy profile" in item.outcome.reason
    assert not [o for o in outgoing if o.type == "edoc"]


def test_a_strict_document_is_marked_strict(core: CoreHub) -> None:
    _, body = core.edoc(G22, [H41])
    [item], outgoing = core.handle(core.inbound(body, G22))
    assert all(o.headers[SIGNATURE_PROFILE] == "strict" for o in outgoing if o.type == "edoc")
    core.pipeline.confirm([item])
    assert core.receipt(item.receipt).signature_profile == "strict"
    [detail] = core.rows(
        "SELECT detail FROM audit_events WHERE receipt_id = :r AND event = 'RECEIVED'",
        r=item.receipt_id,
    )
    assert "signature_profile" not in json.loads(detail.detail)


def test_a_legacy_documents_evidence_bundle_checks_offline(
    core: CoreHub, legacy_signer: Signer
) -> None:
    """The checker verifies the legacy signature and that the receipt names its profile."""
    legacy_until(core, TODAY + timedelta(days=1))
    item, _ = send(core, legacy_signer)
    core.pipeline.confirm([item])
    exported = bundle.export_bundle(
        core.engine, core.archive, item.document_id or "", writer=core.pipeline.writer
    )
    evidence = bundle.check_files(exported.files, core.pki.trust)
    assert evidence.receipt_id == item.receipt_id
