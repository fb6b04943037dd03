"""The hand-written EDXML.md corpus (tests/corpus_edxml) through the hub's pipeline.

Every document and status there is written as real senders write them (element
orders, prefixes and re-declarations, unprefixed AttachmentEncoded, UUID and
foreign DocumentIds, ZIP-wrapped and raw attachments, each status code, revoke,
update and replacement), independently of the ``schemas`` package. Signed with
the test PKI, each is accepted, audited and delivered byte for byte; each bad one
gets the rejection its README names.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from axis import registry
from axis.authorize import AcceptEdoc, AcceptStatus
from axis.rejections import Rejection
from signing import Signer
from signing.pki import make_leaf
from tests.core.conftest import CoreHub

CORPUS = Path(__file__).resolve().parents[1] / "corpus_edxml"
EXPECTED: dict[str, dict] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
EXTRA = {
    "000.00.00.G14": ("Bộ Thông tin và Truyền thông", "ministry"),
    "000.00.00.G17": ("Bộ Xây dựng", "ministry"),
    "000.00.00.H14": ("Ủy ban nhân dân tỉnh Cao Bằng", "province"),
}
ORDER = (
    # The originals first, then what answers or acts on them.
    [n for n, e in EXPECTED.items() if e["valid"] and e["kind"] == "edoc" and not e["targets"]]
    + [n for n, e in EXPECTED.items() if e["valid"] and e["kind"] == "status"]
    + [n for n, e in EXPECTED.items() if e["valid"] and e["kind"] == "edoc" and e["targets"]]
)


@pytest.fixture
def hub(core: CoreHub) -> CoreHub:
    """The core hub with the corpus's other agencies registered."""
    now = datetime.now(UTC)
    with core.engine.begin() as conn:
        for code, (name, kind) in EXTRA.items():
            registry.add_agency(conn, code, name, kind, now)
            leaf = make_leaf(code, core.pki.ca)
            core.pki.agencies[code] = leaf
            registry.add_certificate(conn, code, leaf.certificate, now)
    return core


def signed(hub: CoreHub, name: str) -> bytes:
    facts = EXPECTED[name]
    body = (CORPUS / name).read_bytes()
    if not facts.get("sign", True):
        return body
    leaf = hub.pki.agencies[facts["sender"]]
    try:
        return Signer(leaf.key, leaf.certificate).sign(body)
    except Rejection:
        return body  # no edXMLHeader to sign in (a root in another namespace)


def test_every_valid_document_and_status_is_accepted_audited_and_delivered_byte_for_byte(
    hub: CoreHub,
) -> None:
    for name in ORDER:
        facts = EXPECTED[name]
        body = signed(hub, name)
        items, outgoing = hub.handle(hub.inbound(body, facts["sender"], type=facts["kind"]))
        [item] = items
        assert isinstance(item.outcome, AcceptEdoc | AcceptStatus), (name, item.outcome)
        assert item.document_id == facts["document_id"], name
        delivered = [o for o in outgoing if o.type == facts["kind"]]
        assert delivered and all(o.body == body for o in delivered), name
        if facts["kind"] == "status":
            assert [o.routing_key for o in delivered] == [facts["addressee"]], name
            assert str(item.outcome.status.code) == facts["status_code"], name
        else:
            assert set(facts["recipients"]) - {"@provinces"} <= {o.routing_key for o in delivered}
            assert item.outcome.header.business_type == facts["business_type"], name
            assert list(item.outcome.header.targets) == facts["targets"], name
        hub.pipeline.confirm(items)
        receipt = hub.receipt(item.receipt)
        assert receipt.document_id == facts["document_id"]
        assert receipt.signature_profile == "strict"
    events = {r.event for r in hub.rows("SELECT event FROM audit_events")}
    assert {"RECEIVED", "STATUS", "DELIVERED", "REVOKED", "UPDATED", "REPLACED"} <= events


@pytest.mark.parametrize(
    "name", [n for n, e in EXPECTED.items() if not e["valid"]], ids=lambda n: n.removesuffix(".xml")
)
def test_every_bad_file_gets_the_rejection_its_readme_names(hub: CoreHub, name: str) -> None:
    facts = EXPECTED[name]
    body = signed(hub, name)
    [item], _ = hub.handle(hub.inbound(body, facts["sender"], type=facts["kind"]))
    assert isinstance(item.outcome, Rejection), name
    assert item.outcome.code == facts["code"], (name, item.outcome.reason)
    if name == "bad-wrong-ns-signature.xml":
        assert "namespace" in item.outcome.reason
