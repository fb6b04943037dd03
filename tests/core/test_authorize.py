"""axis.authorize: who may send what to whom, decided from a snapshot and what the hub knows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import schemas
from axis.authorize import (
    AcceptEdoc,
    AcceptStatus,
    Known,
    KnownDocument,
    KnownStatus,
    Retry,
    Unattributable,
    attribute,
    authorize_edoc,
    authorize_status,
    check_active,
    check_signer,
    expand_recipients,
    referenced_documents,
)
from axis.registry import AgencyEntry, CertificateEntry, Snapshot
from axis.rejections import (
    CertNotRegistered,
    CertRevoked,
    DuplicateConflict,
    NotARecipient,
    NotOriginalSender,
    RecipientSuspended,
    SenderMismatch,
    SenderSuspended,
    UnknownDocument,
    UnknownRecipient,
)
from signing import SignatureMethod, VerifiedSignature

G22, G01, H41, H29, H58, H37 = (
    "000.00.00.G22",
    "000.00.00.G01",
    "000.00.00.H41",
    "000.00.00.H29",
    "000.00.00.H58",
    "000.00.00.H37",
)
FP = {
    G22: "a1" * 32,
    G01: "b2" * 32,
    H41: "c3" * 32,
    H29: "f6" * 32,
    "revoked": "d4" * 32,
    "stray": "e5" * 32,
}
SHA = "5e" * 32
ORIGINAL = f"{G22},2026/11/20,101/VPCP-KSTT"


def snapshot(suspended: tuple[str, ...] = ()) -> Snapshot:
    codes = (G22, G01, H41, H29, H58, H37)
    return Snapshot(
        agencies={c: AgencyEntry(c, f"Agency {c}", c not in suspended) for c in codes},
        certificates={
            FP[G22]: CertificateEntry(FP[G22], G22, False),
            FP[G01]: CertificateEntry(FP[G01], G01, False),
            FP[H41]: CertificateEntry(FP[H41], H41, False),
            FP[H29]: CertificateEntry(FP[H29], H29, False),
            FP["revoked"]: CertificateEntry(FP["revoked"], G22, True),
        },
        groups={"provinces": (H29, H37, H41, H58), "south": (H58, H37)},
        version=7,
    )


def signed_by(key: str, code: str | None = None) -> VerifiedSignature:
    """A verified signer: only the fingerprint and subject code matter to authorization."""
    return VerifiedSignature(
        certificate=None,  # type: ignore[arg-type]
        fingerprint=FP[key],
        algorithm=SignatureMethod.ECDSA_SHA256,
        chain=(),
        subject_code=code or key,
    )


def header(
    recipients: tuple[str, ...] = (H41,),
    *,
    document_id: str = ORIGINAL,
    sender: str = G22,
    business_type: int = 0,
    replaces: str | None = None,
) -> schemas.EdocHeader:
    return schemas.EdocHeader(
        document_id=document_id,
        sender=sender,
        recipients=recipients,
        subject="Về việc triển khai Nghị định số 30/2020/NĐ-CP về công tác văn thư",
        document_type=1,
        priority=0,
        steering_type=1,
        due_date=None,
        business_type=business_type,
        business_reason="Sai sót" if business_type else None,
        replaces=replaces,
    )


def status(sender: str = H41, document_id: str = ORIGINAL) -> schemas.Status:
    return schemas.Status(
        sender=sender,
        document_id=document_id,
        code=schemas.StatusCode.ARRIVED,
        timestamp=datetime(2026, 11, 20, 3, 4, 5, tzinfo=UTC),
    )


def known_original(undelivered: tuple[str, ...] = ()) -> Known:
    return Known(
        documents={
            ORIGINAL: KnownDocument(ORIGINAL, G22, SHA, "rid-original", (H41, H29), undelivered)
        }
    )


# attribute / check_active


@pytest.mark.parametrize("user_id", [None, ""])
def test_attribute_refuses_a_message_without_user_id(user_id) -> None:
    with pytest.raises(Unattributable) as caught:
        attribute(user_id, snapshot())
    assert caught.value.reason == "the message has no user_id property"


def test_attribute_refuses_a_user_id_that_is_no_registered_agency() -> None:
    with pytest.raises(Unattributable) as caught:
        attribute("guest", snapshot())
    assert "'guest' is not a registered agency" in caught.value.reason


def test_attribute_returns_the_registered_agency_even_when_suspended() -> None:
    agency = attribute(G01, snapshot(suspended=(G01,)))
    assert agency == AgencyEntry(G01, f"Agency {G01}", False)


def test_check_active_refuses_a_suspended_sender_and_passes_an_active_one() -> None:
    snap = snapshot(suspended=(G01,))
    with pytest.raises(SenderSuspended, match=G01):
        check_active(snap.agencies[G01])
    assert check_active(snap.agencies[G22]) is None


# check_signer


def test_check_signer_accepts_a_registered_certificate_of_the_sender() -> None:
    assert check_signer(signed_by(G22), G22, G22, snapshot()) is None


def test_check_signer_refuses_an_unregistered_certificate() -> None:
    with pytest.raises(CertNotRegistered, match="is not registered to any agency"):
        check_signer(signed_by("stray", G22), G22, G22, snapshot())


def test_check_signer_refuses_a_certificate_revoked_in_the_registry() -> None:
    with pytest.raises(CertRevoked, match="revoked in the registry"):
        check_signer(signed_by("revoked", G22), G22, G22, snapshot())


@pytest.mark.parametrize(
    ("key", "user_id", "claimed_from"),
    [
        (G22, G22, G01),  # From names another agency
        (G22, G01, G22),  # AMQP user is another agency
        (G01, G22, G22),  # the certificate belongs to another agency
    ],
)
def test_check_signer_requires_from_user_id_and_certificate_owner_to_agree(
    key, user_id, claimed_from
) -> None:
    with pytest.raises(SenderMismatch) as caught:
        check_signer(signed_by(key), user_id, claimed_from, snapshot())
    assert f"From/OrganId {claimed_from}, AMQP user_id {user_id}" in caught.value.reason


# expand_recipients


def test_expand_recipients_expands_groups_and_removes_duplicates_in_order() -> None:
    recipients, skipped = expand_recipients([H41, "@provinces", "@south", H41], snapshot())
    assert recipients == (H41, H29, H37, H58)
    assert skipped == ()


def test_expand_recipients_skips_and_reports_a_suspended_group_member() -> None:
    recipients, skipped = expand_recipients(["@provinces"], snapshot(suspended=(H37,)))
    assert recipients == (H29, H41, H58)
    assert skipped == (H37,)


def test_expand_recipients_does_not_report_as_skipped_an_active_agency() -> None:
    recipients, skipped = expand_recipients(["@south", H58], snapshot(suspended=(H37,)))
    assert (recipients, skipped) == ((H58,), (H37,))


def test_expand_recipients_refuses_a_suspended_recipient_named_directly() -> None:
    with pytest.raises(RecipientSuspended, match=f"recipient {H29} is suspended"):
        expand_recipients([H41, H29], snapshot(suspended=(H29,)))


@pytest.mark.parametrize(
    ("address", "message"),
    [("000.00.00.X99", "is not a registered agency"), ("@nowhere", "is not a registered group")],
)
def test_expand_recipients_refuses_an_unknown_agency_or_group(address, message) -> None:
    with pytest.raises(UnknownRecipient, match=message):
        expand_recipients([H41, address], snapshot())


def test_expand_recipients_refuses_when_every_addressed_recipient_is_suspended() -> None:
    with pytest.raises(RecipientSuspended, match="every addressed recipient is suspended"):
        expand_recipients(["@south"], snapshot(suspended=(H58, H37)))


# authorize_edoc


def test_authorize_edoc_accepts_a_new_document_with_expanded_recipients() -> None:
    edoc = header((H41, "@south"))
    decision = authorize_edoc(edoc, signed_by(G22), G22, SHA, snapshot((H37,)), Known())
    assert decision == AcceptEdoc(edoc, G22, (H41, H58), (H37,), None)


def test_authorize_edoc_same_bytes_from_same_sender_is_a_retry_of_the_undelivered() -> None:
    decision = authorize_edoc(
        header(), signed_by(G22), G22, SHA, snapshot(), known_original(undelivered=(H29,))
    )
    assert decision == Retry("rid-original", ORIGINAL, (H29,))


def test_authorize_edoc_same_document_id_with_other_bytes_is_a_duplicate_conflict() -> None:
    with pytest.raises(DuplicateConflict, match=ORIGINAL):
        authorize_edoc(header(), signed_by(G22), G22, "ff" * 32, snapshot(), known_original())


def test_authorize_edoc_checks_the_signer_before_calling_anything_a_retry() -> None:
    with pytest.raises(CertRevoked):
        authorize_edoc(header(), signed_by("revoked", G22), G22, SHA, snapshot(), known_original())


def test_authorize_edoc_refuses_a_revoke_of_a_document_the_hub_never_accepted() -> None:
    revoke = header(document_id=f"{G22},2026/11/21,7/VPCP-KSTT", business_type=1, replaces=ORIGINAL)
    with pytest.raises(UnknownDocument, match=f"ReplacementInfo names {ORIGINAL}"):
        authorize_edoc(revoke, signed_by(G22), G22, SHA, snapshot(), Known())


def test_authorize_edoc_refuses_a_revoke_by_another_agency_than_the_original_sender() -> None:
    revoke = header(
        document_id=f"{G01},2026/11/21,7/BCA", sender=G01, business_type=1, replaces=ORIGINAL
    )
    with pytest.raises(NotOriginalSender, match=f"was sent by {G22}, not {G01}"):
        authorize_edoc(revoke, signed_by(G01), G01, SHA, snapshot(), known_original())


@pytest.mark.parametrize(
    ("business_type", "event"), [(1, "REVOKED"), (2, "UPDATED"), (3, "REPLACED")]
)
def test_authorize_edoc_maps_revoke_update_replace_to_their_audit_events(
    business_type, event
) -> None:
    later = header(
        document_id=f"{G22},2026/11/21,8/VPCP-KSTT",
        business_type=business_type,
        replaces=ORIGINAL,
    )
    decision = authorize_edoc(later, signed_by(G22), G22, "01" * 32, snapshot(), known_original())
    assert isinstance(decision, AcceptEdoc)
    assert decision.business_event == event
    assert decision.recipients == (H41,)


# authorize_status


def test_authorize_status_accepts_a_recipients_status_addressed_to_the_document_sender() -> None:
    report = status(H29)
    decision = authorize_status(report, signed_by(H29), H29, SHA, snapshot(), known_original())
    assert decision == AcceptStatus(report, H29, G22)


def test_authorize_status_same_bytes_again_is_a_retry() -> None:
    known = known_original()
    known.statuses[(H41, SHA)] = KnownStatus("rid-status", ORIGINAL, H41, G22, (G22,))
    decision = authorize_status(status(), signed_by(H41), H41, SHA, snapshot(), known)
    assert decision == Retry("rid-status", ORIGINAL, (G22,))


def test_authorize_status_refuses_a_status_for_an_unknown_document() -> None:
    with pytest.raises(UnknownDocument, match=f"the status is for {ORIGINAL}"):
        authorize_status(status(), signed_by(H41), H41, SHA, snapshot(), Known())


def test_authorize_status_refuses_a_status_from_an_agency_that_did_not_receive_it() -> None:
    report = status(G01)
    with pytest.raises(NotARecipient, match=f"{G01} is not a recipient of {ORIGINAL}"):
        authorize_status(report, signed_by(G01), G01, SHA, snapshot(), known_original())


def test_referenced_documents_names_each_document_and_what_it_replaces() -> None:
    revoke = header(document_id=f"{G22},2026/11/21,7/VPCP-KSTT", business_type=1, replaces=ORIGINAL)
    other = f"{G01},2026/11/19,3/BCA"
    assert referenced_documents([revoke, status(document_id=other)]) == {
        revoke.document_id,
        ORIGINAL,
        other,
    }
