"""The folder bridge against a real hub: outbox to sent/failed, inbox files, a crash."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from adapters_support import agency_files, client_for

import schemas
from adapters import FolderBridge
from signing import TrustStore, Verifier


def bridge_for(hub, agency, root: Path, **options) -> FolderBridge:
    client = client_for(hub, agency, state_dir=root / ".axis-bridge" / "state")
    return FolderBridge(client, root, settle=0, answer_timeout=30, **options)


def drop(root: Path, name: str, data: bytes) -> None:
    """Put a file in the outbox the way a DMS should: write elsewhere, then rename."""
    outbox = root / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    tmp = outbox / f"{name}.tmp"
    tmp.write_bytes(data)
    tmp.rename(outbox / name)


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_outbox_files_are_signed_sent_and_moved_with_their_receipts(axis_hub, tmp_path) -> None:
    a, b = axis_hub.register("FBA"), axis_hub.register("FBB")
    unsigned_edoc, signed_edoc = a.edoc([b.code]), a.edoc([b.code])
    signed = a.sign(signed_edoc)
    drop(tmp_path, "unsigned.xml", schemas.to_bytes(unsigned_edoc))
    drop(tmp_path, "signed.xml", signed)
    (tmp_path / "outbox" / "half-written.xml.tmp").write_bytes(b"<edXML")

    bridge = bridge_for(axis_hub, a, tmp_path)
    with bridge.client:
        assert bridge.run_once(idle=0.5)

    sent = tmp_path / "sent"
    assert files(sent) == [
        "signed.receipt.xml",
        "signed.xml",
        "unsigned.receipt.xml",
        "unsigned.xml",
    ]
    assert files(tmp_path / "outbox") == ["half-written.xml.tmp"]
    assert files(tmp_path / ".axis-bridge" / "journal") == []
    assert (sent / "signed.xml").read_bytes() == signed
    body = (sent / "unsigned.xml").read_bytes()
    verifier = Verifier(TrustStore([axis_hub.ca.certificate]))
    assert verifier.verify(body, at=datetime.now(UTC)).subject_code == a.code
    assert schemas.parse_edoc(body).document_id == unsigned_edoc.document_id
    receipt = schemas.parse_receipt((sent / "unsigned.receipt.xml").read_bytes())
    assert receipt.document_id == unsigned_edoc.document_id
    assert receipt.sha256 == hashlib.sha256(body).hexdigest()
    assert len(b.take(2)) == 2


def test_refused_and_unreadable_files_go_to_failed_with_the_reason(
    axis_hub, broker, tmp_path
) -> None:
    a = axis_hub.register("FBA")
    refused = schemas.to_bytes(a.edoc([broker.unique_code("NOBODY")]))
    drop(tmp_path, "refused.xml", refused)
    drop(tmp_path, "garbage.xml", b"this is not XML")

    bridge = bridge_for(axis_hub, a, tmp_path)
    with bridge.client:
        assert bridge.run_once(idle=0.5)

    failed = tmp_path / "failed"
    assert files(failed) == [
        "garbage.error.txt",
        "garbage.xml",
        "refused.rejection.xml",
        "refused.xml",
    ]
    assert (failed / "refused.xml").read_bytes() == refused
    rejection = schemas.parse_rejection((failed / "refused.rejection.xml").read_bytes())
    assert rejection.code == "UNKNOWN_RECIPIENT"
    assert "MALFORMED" in (failed / "garbage.error.txt").read_text()
    assert files(tmp_path / "outbox") == [] and files(tmp_path / "sent") == []


def test_deliveries_and_statuses_land_in_inbox_and_status_with_sidecars(axis_hub, tmp_path) -> None:
    a, b = axis_hub.register("FBA"), axis_hub.register("FBB")
    edoc = a.edoc([b.code])
    root_a, root_b = tmp_path / "a", tmp_path / "b"
    drop(root_a, "doc.xml", schemas.to_bytes(edoc))
    bridge_a = bridge_for(axis_hub, a, root_a)
    with bridge_a.client:
        assert bridge_a.run_once(idle=0.2)
    receipt = schemas.parse_receipt((root_a / "sent" / "doc.receipt.xml").read_bytes())

    bridge_b = bridge_for(axis_hub, b, root_b)
    with bridge_b.client:
        assert bridge_b.run_once(idle=1.0)
    inbox = root_b / "inbox"
    assert files(inbox) == [f"{receipt.receipt_id}.json", f"{receipt.receipt_id}.xml"]
    assert (inbox / f"{receipt.receipt_id}.xml").read_bytes() == (
        root_a / "sent" / "doc.xml"
    ).read_bytes()
    sidecar = json.loads((inbox / f"{receipt.receipt_id}.json").read_text())
    assert sidecar["sender"] == a.code
    assert sidecar["receipt_id"] == receipt.receipt_id
    assert sidecar["document_id"] == edoc.document_id
    assert sidecar["verified"] is True and sidecar["received_at"]
    assert files(root_b / "answers") == []  # the receipt of the automatic status 01 was matched

    bridge_a = bridge_for(axis_hub, a, root_a)
    with bridge_a.client:
        bridge_a.run_once(idle=2.0)
    [status_file] = [p for p in (root_a / "status").glob("*.xml")]
    status = schemas.parse_status(status_file.read_bytes())
    assert status.code == schemas.StatusCode.ARRIVED and status.sender_id == b.code
    assert json.loads(status_file.with_suffix(".json").read_text())["sender"] == b.code

    # The same delivery again (the hub repeats after a crash): not written twice.
    bridge_b = bridge_for(axis_hub, b, root_b)
    before = files(inbox)
    with bridge_b.client:
        bridge_b.run_once(idle=0.5)
    assert files(inbox) == before


CRASH_AFTER_PUBLISH = (
    "import os, signal\n"
    "import adapters.folder\n"
    "def crash(self, name, message_id):\n"
    "    os.kill(os.getpid(), signal.SIGKILL)\n"
    "adapters.folder.FolderBridge._after_publish = crash\n"
    "from cli import main\n"
    "main()\n"
)
RUN = "from cli import main\nmain()\n"


def run_bridge(program: str, hub, agency, root: Path, keys: dict[str, Path]) -> int:
    """``axis bridge folder --once`` in a process of its own, as the agency."""
    parts = urlsplit(hub.broker.amqp_url)
    without_credentials = f"{parts.hostname}:{parts.port or 5672}"
    command = [
        sys.executable,
        "-c",
        program,
        "bridge",
        "folder",
        "--agency",
        agency.code,
        "--root",
        str(root),
        "--amqp-url",
        # Without the admin credentials of the test URL: the bridge refuses a password
        # on its command line, where ps would show it.
        urlunsplit(urlsplit(hub.broker.amqp_url)._replace(netloc=without_credentials)),
        "--password-file",
        str(keys["password"]),
        "--key",
        str(keys["key"]),
        "--cert",
        str(keys["cert"]),
        "--trust",
        str(keys["ca"]),
        "--hub-cert",
        str(keys["hub"]),
        "--once",
        "--settle",
        "0",
        "--answer-timeout",
        "30",
    ]
    return subprocess.run(command, capture_output=True, timeout=120).returncode


def test_bridge_killed_between_publish_and_move_resumes_without_loss_or_duplicate(
    axis_hub, tmp_path
) -> None:
    a, b = axis_hub.register("FBA"), axis_hub.register("FBB")
    keys = agency_files(axis_hub, a, tmp_path / "keys")
    root = tmp_path / "a"
    edoc = a.edoc([b.code])
    drop(root, "doc.xml", schemas.to_bytes(edoc))

    assert run_bridge(CRASH_AFTER_PUBLISH, axis_hub, a, root, keys) == -9
    assert files(root / "outbox") == ["doc.xml"]
    assert files(root / "sent") == []
    assert files(root / ".axis-bridge" / "journal") == ["doc.xml.body", "doc.xml.json"]

    assert run_bridge(RUN, axis_hub, a, root, keys) == 0
    assert files(root / "outbox") == []
    assert files(root / "sent") == ["doc.receipt.xml", "doc.xml"]
    assert files(root / "failed") == [] and files(root / "answers") == []
    assert files(root / ".axis-bridge" / "journal") == []
    receipt = schemas.parse_receipt((root / "sent" / "doc.receipt.xml").read_bytes())
    assert receipt.document_id == edoc.document_id

    deliveries = b.take(2, timeout=5)
    assert [m.headers["x-axis-receipt-id"] for m in deliveries] == [receipt.receipt_id]
    assert deliveries[0].body == (root / "sent" / "doc.xml").read_bytes()
