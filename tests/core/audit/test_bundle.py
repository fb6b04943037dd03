"""axis.audit.bundle: a document's evidence, exported from real hub traffic, checked offline.

The hub is a real one (router, RabbitMQ, SQLite); the agencies use the Python SDK.
Checking uses nothing but the bundle's bytes and the CA certificate.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509

import schemas
from axis import db
from axis.archive import Archive
from axis.audit import bundle
from axis.audit.bundle import BundleError, Export, ExportError, check_bundle, check_files
from axis.broker.testing import BrokerEnv
from axis.models import ChainHead
from axis.receipts import ReceiptWriter
from axis.service import hub_signer
from signing import Signer, TrustStore
from signing.pki import cert_pem, make_ca, make_leaf
from tests.conftest import fresh_pg_database

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from bundle_support import (  # noqa: E402
    PRIVATE_SUBJECT,
    Traffic,
    events,
    hub_support,
    run_traffic,
)
from bundle_support import sample as bundle_support_sample  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def traffic(broker: BrokerEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    folder = tmp_path_factory.mktemp("bundle-hub")
    hub = hub_support._start_hub(broker, folder, f"sqlite:///{folder / 'axis.db'}")
    try:
        yield run_traffic(hub)
    finally:
        hub_support._stop_hub(hub)


def export(traffic: Traffic, engine: sa.Engine | None = None, **kwargs) -> Export:
    config = traffic.hub.config
    kwargs.setdefault("writer", ReceiptWriter(hub_signer(config)))
    archive = Archive(config.hub.archive_dir)
    try:
        return bundle.export_bundle(
            engine or traffic.hub.engine, archive, traffic.document_id, **kwargs
        )
    finally:
        archive.close()


@pytest.fixture(scope="module")
def exported(traffic: Traffic) -> Export:
    return export(traffic)


@pytest.fixture(scope="module")
def trust(traffic: Traffic) -> TrustStore:
    return TrustStore([traffic.hub.ca.certificate])


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    bundle.write_zip(files, out, when=datetime.now(UTC))
    return out.getvalue()


def forged(files: dict[str, bytes], name: str, body: bytes | None) -> dict[str, bytes]:
    """``files`` with ``name`` replaced (or removed) and the manifest recomputed to match:
    what a forger who knows the format would do."""
    changed = {n: b for n, b in files.items() if n != bundle.MANIFEST}
    if body is None:
        del changed[name]
    else:
        changed[name] = body
    document_id = json.loads(files[bundle.MANIFEST])["document_id"]
    changed[bundle.MANIFEST] = bundle.manifest_bytes(document_id, changed)
    return changed


def failure(files: dict[str, bytes], trust: TrustStore) -> BundleError:
    with pytest.raises(BundleError) as caught:
        check_files(files, trust)
    return caught.value


def test_a_bundle_of_real_traffic_checks_offline_and_tells_the_documents_story(
    traffic: Traffic, exported: Export, trust: TrustStore
) -> None:
    evidence = check_bundle(zipped(exported.files), trust)
    assert evidence.document_id == traffic.document_id
    assert evidence.sender == traffic.sender
    assert evidence.sha256 == hashlib.sha256(traffic.body).hexdigest()
    assert exported.files[bundle.DOCUMENT] == traffic.body
    assert evidence.receipt_id == traffic.receipt_id
    assert [(d.recipient, d.outcome) for d in evidence.deliveries] == [
        (code, "delivered") for code in traffic.recipients
    ]
    assert all(
        d.delivered_at and d.delivered_at >= evidence.received_at for d in evidence.deliveries
    )
    assert sorted((s.sender, s.code) for s in evidence.statuses) == sorted(
        [
            (traffic.recipients[0], "01"),
            (traffic.recipients[1], "01"),
            (traffic.recipients[0], "06"),
        ]
    )
    assert [s.description for s in evidence.statuses if s.code == "06"] == ["Đã hoàn thành"]
    kinds = [event.kind for event in evidence.events]
    assert kinds.count("RECEIVED") == 1 and kinds.count("STATUS") == 3
    assert kinds.count("DELIVERED") == 5 and kinds.count("REVOKED") == 1
    assert any(note.startswith("revoked by ") for note in evidence.notes)
    assert evidence.head_seq >= evidence.events[-1].seq
    assert evidence.hub_subject.startswith("CN=axis-hub")
    assert exported.omitted == 0


def test_other_agencies_events_are_in_the_bundle_only_as_digests(
    traffic: Traffic, exported: Export
) -> None:
    events = json.loads(exported.files[bundle.EVENTS])
    assert {e["document_id"] for e in events["events"]} == {traffic.document_id}
    run = events["last_seq"] - events["first_seq"] + 1
    assert run > len(events["events"])  # the bystander's document lies inside the run
    assert len(exported.files[bundle.LINKS]) == 32 * run
    for name, body in exported.files.items():
        assert PRIVATE_SUBJECT.encode() not in body, name


def test_the_manifest_lists_every_file_with_its_sha256(exported: Export) -> None:
    manifest = json.loads(exported.files[bundle.MANIFEST])
    assert (manifest["format"], manifest["version"]) == ("axis-evidence-bundle", 1)
    assert set(manifest["files"]) == set(exported.files) - {bundle.MANIFEST}
    for name, sha in manifest["files"].items():
        assert hashlib.sha256(exported.files[name]).hexdigest() == sha
    assert b"axis audit check" in exported.files[bundle.README]


def _status_body(files: dict[str, bytes]) -> str:
    return next(n for n in files if n.startswith("messages/") and n.count(".") == 1)


def _replace_once(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def change(body: bytes) -> bytes:
        assert old in body
        return body.replace(old, new, 1)

    return change


def _flip_middle(body: bytes) -> bytes:
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]


@pytest.mark.parametrize(
    ("name", "change", "expected"),
    [
        (
            bundle.DOCUMENT,
            _replace_once(b"<edXML:Subject>", b"<edXML:Subject>X"),
            "document.xml: its SHA-256",
        ),
        (bundle.RECEIPT, _replace_once(b"<AuditSeq>", b"<AuditSeq>1"), "does not verify"),
        (bundle.HEAD, _replace_once(b"<Seq>", b"<Seq>1"), "chain-head.xml: the hub's signature"),
        (bundle.EVENTS, _replace_once(b'"DELIVERED"', b'"REJECTED"'), "does not match the chain"),
        (bundle.LINKS, _flip_middle, "does not reach the signed head's hash"),
        (bundle.HUB_CERTIFICATES, lambda body: b"", "hub.pem"),
        (bundle.README, lambda body: body + b"!", None),
    ],
    ids=["document", "receipt", "chain-head", "event", "chain-link", "hub-cert", "readme"],
)
def test_a_changed_file_with_a_matching_manifest_still_fails_its_own_check(
    exported: Export, trust: TrustStore, name, change, expected
) -> None:
    files = forged(exported.files, name, change(exported.files[name]))
    if expected is None:  # README.txt is prose: only the manifest protects it
        check_files(files, trust)
        return
    assert expected in str(failure(files, trust))


def test_a_changed_status_or_a_removed_or_added_file_fails(
    exported: Export, trust: TrustStore
) -> None:
    status = _status_body(exported.files)
    error = failure(forged(exported.files, status, exported.files[status] + b" "), trust)
    assert error.file == status and "SHA-256" in error.reason
    error = failure(forged(exported.files, status, None), trust)
    assert error.file == status and "missing" in error.reason
    extra = dict(exported.files, **{"messages/extra.xml": b"<x/>"})
    assert "not listed in the manifest" in str(failure(extra, trust))
    error = failure(forged(exported.files, "messages/extra.xml", b"<x/>"), trust)
    assert "belongs to no event" in error.reason


def test_a_manifest_changed_without_its_files_fails(exported: Export, trust: TrustStore) -> None:
    manifest = exported.files[bundle.MANIFEST]
    other = manifest.replace(b'"document_id": "', b'"document_id": "X', 1)
    assert "another document" in str(
        failure(dict(exported.files, **{"manifest.json": other}), trust)
    )
    spaced = manifest.replace(b"{", b"{ ", 1)
    error = failure(dict(exported.files, **{"manifest.json": spaced}), trust)
    assert "canonical" in error.reason
    newer = manifest.replace(b'"version": 1', b'"version": 2')
    assert "not supported" in str(failure(dict(exported.files, **{"manifest.json": newer}), trust))


def test_answers_signed_by_anyone_but_the_hub_fail(
    traffic: Traffic, exported: Export, trust: TrustStore
) -> None:
    from axis.audit.bundle import signing_certificates
    from schemas.xml import parse
    from signing.verify import Verifier

    # An agency whose certificate chains to the same CA re-signs the receipt.
    agency = next(iter(traffic.hub.agencies.values()))
    receipt = exported.files[bundle.RECEIPT]
    Verifier(trust).verify(receipt, at=datetime.now(UTC))
    unsigned = parse(receipt)
    signature = unsigned.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    unsigned.remove(signature)
    resigned = agency.signer.sign(unsigned)
    certs = [*signing_certificates([exported.files[bundle.HEAD]])]
    certs += signing_certificates([resigned])
    files = forged(exported.files, bundle.RECEIPT, resigned)
    files = forged(files, bundle.HUB_CERTIFICATES, b"".join(cert_pem(c) for c in certs))
    error = failure(files, trust)
    assert error.file == bundle.RECEIPT and "not the hub" in error.reason

    # An impostor hub under another CA signs the head.
    other = make_leaf("axis-hub", make_ca("Impostor CA"))
    head = ReceiptWriter(Signer(other.key, other.certificate)).chain_head(
        seq=exported.head_seq,
        chain_hash=json.loads(exported.files[bundle.EVENTS])["events"][-1]["hash"],
        signed_at=datetime.now(UTC),
    )
    error = failure(forged(exported.files, bundle.HEAD, head), trust)
    assert error.file == bundle.HEAD and "CERT_UNTRUSTED" in error.reason


def test_a_pinned_hub_certificate_is_enforced(
    traffic: Traffic, exported: Export, trust: TrustStore
) -> None:
    hub_pem = traffic.hub.config.signing.certificate.read_bytes()
    pinned = bundle.fingerprint(x509.load_pem_x509_certificate(hub_pem))
    assert check_files(exported.files, trust, hub_fingerprint=pinned).head_seq
    error = failure_with(exported.files, trust, hub_fingerprint="0" * 64)
    assert "pinned" in error.reason


def failure_with(files: dict[str, bytes], trust: TrustStore, **kwargs) -> BundleError:
    with pytest.raises(BundleError) as caught:
        check_files(files, trust, **kwargs)
    return caught.value


def test_a_wrong_trust_anchor_fails(exported: Export) -> None:
    stranger = TrustStore([make_ca("Some other CA").certificate])
    error = failure(exported.files, stranger)
    assert "CERT_UNTRUSTED" in error.reason


def test_flipping_any_byte_of_any_file_fails_with_a_clear_message(
    exported: Export, trust: TrustStore
) -> None:
    files = exported.files
    flips = 0
    for name, body in files.items():
        for position in range(len(body)):
            for mask in (0x01, 0x80) if name == bundle.MANIFEST else (0x01,):
                changed = bytearray(body)
                changed[position] ^= mask
                with pytest.raises(BundleError) as caught:
                    check_files(dict(files, **{name: bytes(changed)}), trust)
                assert caught.value.reason, (name, position)
                flips += 1
    assert flips > sum(len(body) for body in files.values())


def test_flipping_any_byte_of_the_zip_never_passes_other_contents(
    exported: Export, trust: TrustStore
) -> None:
    """Some zip fields (times, attributes, the local copies of sizes) do not change any
    file; a flip there still checks. Everything else fails with a message."""
    data = zipped(exported.files)
    original = bundle.read_zip(data)
    for position in range(len(data)):
        changed = bytearray(data)
        changed[position] ^= 0x01
        try:
            files = bundle.read_zip(bytes(changed))
        except BundleError as exc:
            assert exc.reason
            continue
        if files == original:
            continue
        with pytest.raises(BundleError):
            check_files(files, trust)


def test_export_refuses_an_unknown_document(traffic: Traffic) -> None:
    with pytest.raises(ExportError, match="no audit event names"):
        export(replace(traffic, document_id="000.00.00.G22,2026/01/01,1/NONE"))


@pytest.fixture
def hub_copy(traffic: Traffic, tmp_path: Path) -> Iterator[sa.Engine]:
    """A copy of the hub's database, for exports from a state the live hub must keep."""
    source = sqlite3.connect(traffic.hub.engine.url.database, isolation_level=None)
    try:
        source.execute("VACUUM INTO ?", (str(tmp_path / "copy.db"),))
    finally:
        source.close()
    engine = db.make_engine(f"sqlite:///{tmp_path / 'copy.db'}")
    try:
        yield engine
    finally:
        engine.dispose()


def test_export_signs_a_fresh_head_when_none_covers_the_document_yet(
    traffic: Traffic, trust: TrustStore, hub_copy: sa.Engine
) -> None:
    last = json.loads(export(traffic).files[bundle.EVENTS])["events"][-1]["seq"]
    with hub_copy.begin() as conn:
        conn.execute(sa.delete(ChainHead).where(ChainHead.seq >= last))
    result = export(traffic, hub_copy)
    assert result.signed_head and result.omitted == 0
    assert check_files(result.files, trust).head_seq >= last


def test_export_without_the_hub_key_ends_at_the_newest_signed_head(
    traffic: Traffic, trust: TrustStore, hub_copy: sa.Engine
) -> None:
    events = json.loads(export(traffic).files[bundle.EVENTS])["events"]
    with hub_copy.begin() as conn:
        conn.execute(sa.delete(ChainHead).where(ChainHead.seq >= events[-1]["seq"]))
        newest = conn.execute(sa.select(sa.func.max(ChainHead.seq))).scalar()
    if newest is None or newest < events[0]["seq"]:
        with pytest.raises(ExportError, match="no signed chain head covers"):
            export(traffic, hub_copy, writer=None)
        return
    result = export(traffic, hub_copy, writer=None)
    assert not result.signed_head and result.head_seq == newest
    assert result.omitted == sum(1 for e in events if e["seq"] > newest) > 0
    assert check_files(result.files, trust).head_seq == newest


def test_export_refuses_a_broken_chain(traffic: Traffic, hub_copy: sa.Engine) -> None:
    first = json.loads(export(traffic).files[bundle.EVENTS])["first_seq"]
    with hub_copy.begin() as conn:
        conn.exec_driver_sql(f"UPDATE audit_events SET code = '99' WHERE seq = {first + 1}")
    with pytest.raises(ExportError, match=f"broken at seq {first + 1}"):
        export(traffic, hub_copy)


def test_read_zip_refuses_what_is_not_a_zip() -> None:
    with pytest.raises(BundleError, match="not a readable zip"):
        bundle.read_zip(b"PK\x03\x04 not really")
    with pytest.raises(BundleError, match="missing"):
        check_files({}, TrustStore([make_ca("x").certificate]))


@pytest.mark.postgres
def test_a_bundle_from_a_postgresql_hub_checks_too(
    broker: BrokerEnv, pg_url: str, tmp_path: Path
) -> None:
    with fresh_pg_database(pg_url) as url:
        hub = hub_support._start_hub(broker, tmp_path, url)
        try:
            traffic = run_traffic(hub)
            result = export(traffic)
            evidence = check_bundle(zipped(result.files), TrustStore([hub.ca.certificate]))
        finally:
            hub_support._stop_hub(hub)
    assert evidence.document_id == traffic.document_id
    assert sorted(s.code for s in evidence.statuses) == ["01", "01", "06"]
    assert all(d.delivered_at for d in evidence.deliveries)


def test_a_revoke_repeating_its_originals_document_id_is_in_the_bundle_as_the_action(
    traffic: Traffic, trust: TrustStore
) -> None:
    """The national SDK's revoke repeats the original's header, DocumentId included."""
    hub = traffic.hub
    sender, recipient = hub.register("BSDKS"), hub.register("BSDKR")
    with hub.client(sender) as s, hub.client(recipient) as r:
        original = bundle_support_sample(sender.code, [recipient.code])
        sent = s.send(original)
        list(r.receive(timeout=3))
        business = schemas.Business(schemas.BusinessDocType.REVOKE, "Ban hành nhầm")
        revoked = s.send(replace(original, business=business))
        list(r.receive(timeout=3))
        hub.wait_until(
            lambda: [e.event for e in events(hub, original.document_id)].count("DELIVERED") == 4
        )
    config = hub.config
    archive = Archive(config.hub.archive_dir)
    try:
        exported = bundle.export_bundle(
            hub.engine, archive, original.document_id, writer=ReceiptWriter(hub_signer(config))
        )
    finally:
        archive.close()
    assert exported.files[bundle.DOCUMENT] == sent.body
    evidence = check_bundle(zipped(exported.files), trust)
    assert evidence.receipt_id == sent.receipt.receipt_id
    assert [e.kind for e in evidence.events].count("RECEIVED") == 2
    assert f"revoked by {original.document_id}" in evidence.notes
    assert revoked.receipt.receipt_id in {e.receipt_id for e in evidence.events}
