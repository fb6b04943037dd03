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
    H58: "a7" * 32,
    "revoked": "d4" * 32,
    "stray": "e5" * 32,
}
SHA = "5e" * 32
ORIGINAL = f"{G22},2026/11/20,101/VPCP-KSTT"
SECOND = f"{G22},2026/11/20,102/VPCP-KSTT"
REVOKE_ID = f"{G22},2026/11/21,7/VPCP-KSTT"
LATER_ID = f"{G22},2026/11/21,8/VPCP-KSTT"


def snapshot(suspended: tuple[str, ...] = ()) -> Snapshot:
    codes = (G22, G01, H41, H29, H58, H37)
    return Snapshot(
        agencies={c: AgencyEntry(c, f"Agency {c}", c not in suspended) for c in codes},
        certificates={
            FP[G22]: CertificateEntry(FP[G22], G22, False),
            FP[G01]: CertificateEntry(FP[G01], G01, False),
            FP[H41]: CertificateEntry(FP[H41], H41, False),
            FP[H29]: CertificateEntry(FP[H29], H29, False),
            FP[H58]: CertificateEntry(FP[H58], H58, False),
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
    targets: tuple[str, ...] = (),
    new_receivers: tuple[str, ...] = (),
    replaced_for: tuple[tuple[str, tuple[str, ...]], ...] = (),
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
        targets=targets,
        new_receivers=new_receivers,
        replaced_for=replaced_for,
    )


def status(
    sender: str = H41,
    document_id: str = ORIGINAL,
    code: schemas.StatusCode | str = schemas.StatusCode.ARRIVED,
    *,
    addressee: str = G22,
) -> schemas.Status:
    return schemas.Status.about(
        sender,
        document_id,
        code,
        datetime(2026, 11, 20, 3, 4, 5, tzinfo=UTC),
        addressee=addressee,
    )


def original(undelivered: tuple[str, ...] = ()) -> KnownDocument:
    """G22's ORIGINAL, delivered to H41 and H29."""
    return KnownDocument(ORIGINAL, G22, SHA, "rid-original", (H41, H29), undelivered)


def known_original(undelivered: tuple[str, ...] = ()) -> Known:
    known = Known()
    known.add(original(undelivered))
    return known


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


def test_authorize_edoc_the_same_document_id_from_two_senders_is_two_documents() -> None:
    known = known_original()
    theirs = header(sender=G01)  # G01 happens to use G22's DocumentId
    decision = authorize_edoc(theirs, signed_by(G01), G01, "01" * 32, snapshot(), known)
    assert decision == AcceptEdoc(theirs, G01, (H41,), (), None)

    known.add(KnownDocument(ORIGINAL, G01, "01" * 32, "rid-g01", (H41,), ()))
    assert known.document(G22, ORIGINAL) == original()
    assert known.document(G01, ORIGINAL).receipt_id == "rid-g01"  # type: ignore[union-attr]
    # Each sender's retry is still its own, and a conflict is still per sender.
    assert authorize_edoc(header(), signed_by(G22), G22, SHA, snapshot(), known) == Retry(
        "rid-original", ORIGINAL, ()
    )
    with pytest.raises(DuplicateConflict, match=f"already received from {G01}"):
        authorize_edoc(theirs, signed_by(G01), G01, "02" * 32, snapshot(), known)


def test_authorize_edoc_refuses_a_revoke_of_a_document_the_hub_never_accepted() -> None:
    revoke = header(document_id=REVOKE_ID, business_type=1, targets=(ORIGINAL,))
    with pytest.raises(UnknownDocument, match=f"{ORIGINAL}, which the action names"):
        authorize_edoc(revoke, signed_by(G22), G22, SHA, snapshot(), Known())


def test_authorize_edoc_refuses_an_sdk_revoke_whose_original_was_never_accepted() -> None:
    revoke = header(business_type=1, targets=(ORIGINAL,))
    with pytest.raises(UnknownDocument, match=f"{ORIGINAL}, which the action names"):
        authorize_edoc(revoke, signed_by(G22), G22, SHA, snapshot(), Known())


def test_authorize_edoc_refuses_a_revoke_by_another_agency_than_the_original_sender() -> None:
    revoke = header(
        document_id=f"{G01},2026/11/21,7/BCA", sender=G01, business_type=1, targets=(ORIGINAL,)
    )
    with pytest.raises(NotOriginalSender, match=f"{ORIGINAL} was not sent by {G01}"):
        authorize_edoc(revoke, signed_by(G01), G01, SHA, snapshot(), known_original())


def test_authorize_edoc_refuses_an_sdk_revoke_of_another_agencys_document_id() -> None:
    # G01 repeats G22's header as the SDK does, id included: still not G01's document.
    revoke = header(sender=G01, business_type=1, targets=(ORIGINAL,))
    with pytest.raises(NotOriginalSender, match=f"{ORIGINAL} was not sent by {G01}"):
        authorize_edoc(revoke, signed_by(G01), G01, "01" * 32, snapshot(), known_original())


def test_authorize_edoc_a_revoke_acts_on_the_acting_agencys_own_document_of_a_shared_id() -> None:
    known = known_original()
    ours = KnownDocument(ORIGINAL, G01, "01" * 32, "rid-g01", (H41,), ())
    known.add(ours)
    revoke = header(sender=G01, business_type=1, targets=(ORIGINAL,))
    decision = authorize_edoc(revoke, signed_by(G01), G01, "02" * 32, snapshot(), known)
    assert isinstance(decision, AcceptEdoc)
    assert decision.targets == (ours,)


def test_authorize_edoc_accepts_an_sdk_revoke_repeating_its_originals_id_and_targets_it() -> None:
    revoke = header(business_type=1, targets=(ORIGINAL,))  # MessageHeader/DocumentId = ORIGINAL
    decision = authorize_edoc(revoke, signed_by(G22), G22, "01" * 32, snapshot(), known_original())
    assert decision == AcceptEdoc(revoke, G22, (H41,), (), "REVOKED", (original(),))


def test_authorize_edoc_a_second_revoke_with_other_bytes_is_a_duplicate_conflict() -> None:
    known = known_original()
    known.add(KnownDocument(ORIGINAL, G22, "01" * 32, "rid-revoke", (H41,), (), None, 1))
    revoke = header(business_type=1, targets=(ORIGINAL,))
    # The original is still what the id names, and the first revoke's bytes are a retry.
    assert known.document(G22, ORIGINAL) == original()
    assert authorize_edoc(revoke, signed_by(G22), G22, "01" * 32, snapshot(), known) == Retry(
        "rid-revoke", ORIGINAL, ()
    )
    with pytest.raises(DuplicateConflict, match=ORIGINAL):
        authorize_edoc(revoke, signed_by(G22), G22, "02" * 32, snapshot(), known)


@pytest.mark.parametrize(
    ("business_type", "event"), [(1, "REVOKED"), (2, "UPDATED"), (3, "REPLACED")]
)
def test_authorize_edoc_maps_revoke_update_replace_to_their_audit_events(
    business_type, event
) -> None:
    later = header(document_id=LATER_ID, business_type=business_type, targets=(ORIGINAL,))
    decision = authorize_edoc(later, signed_by(G22), G22, "01" * 32, snapshot(), known_original())
    assert isinstance(decision, AcceptEdoc)
    assert decision.business_event == event
    assert decision.recipients == (H41,)
    assert decision.targets == (original(),)


def test_authorize_edoc_delivers_an_update_to_its_recipients_and_its_new_receivers() -> None:
    update = header(
        (H41,),
        document_id=LATER_ID,
        business_type=2,
        targets=(ORIGINAL,),
        new_receivers=(H29, H41, "@south"),
    )
    decision = authorize_edoc(update, signed_by(G22), G22, "01" * 32, snapshot(), known_original())
    assert isinstance(decision, AcceptEdoc)
    assert decision.recipients == (H41, H29, H58, H37)
    assert (decision.business_event, decision.targets) == ("UPDATED", (original(),))


def test_authorize_edoc_a_replacement_with_two_replacement_infos_targets_both() -> None:
    known = known_original()
    second = KnownDocument(SECOND, G22, "02" * 32, "rid-second", (H29,), ())
    known.add(second)
    replace = header(
        (H41, H29),
        document_id=LATER_ID,
        business_type=3,
        targets=(ORIGINAL, SECOND),
        replaced_for=((ORIGINAL, (H41,)), (SECOND, (H29,))),
    )
    decision = authorize_edoc(replace, signed_by(G22), G22, "03" * 32, snapshot(), known)
    assert decision == AcceptEdoc(replace, G22, (H41, H29), (), "REPLACED", (original(), second))


def test_authorize_edoc_refuses_a_replacement_when_any_target_is_unknown() -> None:
    replace = header(
        document_id=LATER_ID,
        business_type=3,
        targets=(ORIGINAL, SECOND),
        replaced_for=((ORIGINAL, (H41,)), (SECOND, (H41,))),
    )
    with pytest.raises(UnknownDocument, match=SECOND):
        authorize_edoc(replace, signed_by(G22), G22, "03" * 32, snapshot(), known_original())


def test_authorize_edoc_accepts_and_delivers_a_document_addressed_to_its_own_sender() -> None:
    to_self = header((G22,))
    decision = authorize_edoc(to_self, signed_by(G22), G22, SHA, snapshot(), Known())
    assert decision == AcceptEdoc(to_self, G22, (G22,), (), None)


# authorize_status


def test_authorize_status_accepts_a_recipients_status_addressed_to_the_document_sender() -> None:
    report = status(H29)
    decision = authorize_status(report, signed_by(H29), H29, SHA, snapshot(), known_original())
    assert decision == AcceptStatus(report, H29, G22, original())


@pytest.mark.parametrize(
    "code",
    [
        schemas.StatusCode.ARRIVED,
        schemas.StatusCode.REFUSED,
        schemas.StatusCode.ACCEPTED,
        schemas.StatusCode.AWAITING_ASSIGNMENT,
        schemas.StatusCode.BEING_PROCESSED,
        schemas.StatusCode.COMPLETED,
        schemas.StatusCode.RECALL_AGREED,
        schemas.StatusCode.RECALL_REFUSED,
    ],
)
def test_authorize_status_accepts_each_recipient_code_from_a_recipient(code) -> None:
    report = status(H41, code=code)
    decision = authorize_status(report, signed_by(H41), H41, SHA, snapshot(), known_original())
    assert decision == AcceptStatus(report, H41, G22, original())
    assert report.document_sender == G22


def test_authorize_status_same_bytes_again_is_a_retry() -> None:
    known = known_original()
    known.statuses[(H41, SHA)] = KnownStatus("rid-status", ORIGINAL, H41, G22, (G22,))
    decision = authorize_status(status(), signed_by(H41), H41, SHA, snapshot(), known)
    assert decision == Retry("rid-status", ORIGINAL, (G22,))


def test_authorize_status_refuses_a_status_for_an_unknown_document() -> None:
    with pytest.raises(UnknownDocument, match=f"the status is about {ORIGINAL} from {G22}"):
        authorize_status(status(), signed_by(H41), H41, SHA, snapshot(), Known())


def test_authorize_status_refuses_a_status_from_an_agency_that_did_not_receive_it() -> None:
    report = status(G01)
    with pytest.raises(NotARecipient, match=f"{G01} is not a recipient of {ORIGINAL}"):
        authorize_status(report, signed_by(G01), G01, SHA, snapshot(), known_original())


def test_authorize_status_refuses_a_06_addressed_to_an_agency_that_did_not_send_it() -> None:
    # H41 received G22's ORIGINAL, but addresses its 06 to G01, who sent no such document.
    report = status(H41, code=schemas.StatusCode.COMPLETED, addressee=G01)
    with pytest.raises(UnknownDocument, match=f"about {ORIGINAL} from {G01}"):
        authorize_status(report, signed_by(H41), H41, SHA, snapshot(), known_original())


def test_authorize_status_finds_the_document_of_the_sender_it_is_addressed_to() -> None:
    known = known_original()
    theirs = KnownDocument(ORIGINAL, G01, "01" * 32, "rid-g01", (H58,), ())
    known.add(theirs)
    report = status(H58, addressee=G01)
    decision = authorize_status(report, signed_by(H58), H58, SHA, snapshot(), known)
    assert decision == AcceptStatus(report, H58, G01, theirs)
    # H58 received G01's document, not G22's with the same id.
    with pytest.raises(NotARecipient, match=f"{H58} is not a recipient"):
        authorize_status(status(H58), signed_by(H58), H58, SHA, snapshot(), known)


def test_authorize_status_accepts_a_recall_request_13_from_the_sender_to_a_recipient() -> None:
    recall = status(G22, code=schemas.StatusCode.RECALL_REQUESTED, addressee=H41)
    decision = authorize_status(recall, signed_by(G22), G22, SHA, snapshot(), known_original())
    assert decision == AcceptStatus(recall, G22, H41, original())
    assert recall.document_sender == G22


def test_authorize_status_refuses_a_13_from_a_recipient_as_a_document_it_never_sent() -> None:
    # 13 is looked up as (status sender, id): H41 sent no ORIGINAL.
    recall = status(H41, code=schemas.StatusCode.RECALL_REQUESTED, addressee=G22)
    with pytest.raises(UnknownDocument, match=f"{ORIGINAL}, which {H41} never sent"):
        authorize_status(recall, signed_by(H41), H41, SHA, snapshot(), known_original())


def test_authorize_status_refuses_a_13_addressed_to_an_agency_that_is_no_recipient() -> None:
    recall = status(G22, code=schemas.StatusCode.RECALL_REQUESTED, addressee=G01)
    with pytest.raises(NotARecipient, match=f"{G01} is not a recipient of {ORIGINAL}"):
        authorize_status(recall, signed_by(G22), G22, SHA, snapshot(), known_original())


def test_referenced_documents_names_each_document_and_what_it_acts_on() -> None:
    replace = header(
        document_id=LATER_ID,
        business_type=3,
        targets=(ORIGINAL, SECOND),
        replaced_for=((ORIGINAL, (H41,)), (SECOND, (H41,))),
    )
    other = f"{G01},2026/11/19,3/BCA"
    assert referenced_documents([replace, status(document_id=other)]) == {
        LATER_ID,
        ORIGINAL,
        SECOND,
        other,
    }
