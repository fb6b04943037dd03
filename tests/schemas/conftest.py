"""Documents shared by the schemas tests."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path

# In pytest's "prepend" import mode tests/ lands on sys.path, where this folder (no
# __init__.py, which would shadow the real package) looks like an empty namespace
# package ``schemas``: make the project root win over it.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
if getattr(sys.modules.get("schemas"), "__file__", "") is None:
    del sys.modules["schemas"]

import pytest  # noqa: E402

from schemas import (  # noqa: E402
    Attachment,
    Business,
    Edoc,
    Organization,
    Priority,
    ResponseFor,
    SignerInfo,
    SteeringType,
    TraceHeader,
)

SUBJECT = "Về việc triển khai Nghị định số 30/2020/NĐ-CP về công tác văn thư"


@pytest.fixture
def full_edoc() -> Edoc:
    """A document using every optional field, two recipients and a group."""
    return Edoc(
        sender=Organization(
            "000.00.00.G22",
            name="Văn phòng Chính phủ",
            address="16 Lê Hồng Phong, Ba Đình, Hà Nội",
            email="vpcp@chinhphu.vn",
            telephone="080 43162",
            fax="080 44130",
            website="https://vpcp.chinhphu.vn",
        ),
        recipients=[
            Organization("000.00.00.H41", name="Ủy ban nhân dân tỉnh Nghệ An"),
            Organization("000.00.00.G14"),
            Organization("@provinces"),
        ],
        number="101",
        notation="VPCP-KSTT",
        promulgation_date=date(2026, 11, 20),
        subject=SUBJECT,
        document_type=1,
        type_name="Công văn",
        place="Hà Nội",
        content="Đề nghị các Bộ, ngành, địa phương khẩn trương triển khai.\nTrân trọng.",
        signer=SignerInfo(
            "Trần Văn Sơn", position="Bộ trưởng, Chủ nhiệm", competence="KT. BỘ TRƯỞNG"
        ),
        due_date=date(2026, 12, 15),
        to_places=["Như trên", "Lưu: VT, KSTT (3b)"],
        steering_type=SteeringType.DIRECTIVE,
        priority=Priority.VERY_URGENT,
        sphere_of_promulgation="Toàn quốc",
        typer_notation="NTL",
        promulgation_amount=65,
        page_amount=3,
        direction=True,
        response_for=[ResponseFor.from_document_id("000.00.00.H41,2026/11/01,55/UBND-VX")],
        trace=[TraceHeader("000.00.00.G22", datetime(2026, 11, 20, 1, 2, 3, 4, tzinfo=UTC))],
        business=Business(),
        attachments=[
            Attachment("att-1", "application/pdf", "Công văn 101.pdf", b"%PDF-1.4\n\x00\xff\x80"),
            Attachment("att-2", "text/plain", "Phụ lục.txt", "Phụ lục I".encode()),
        ],
    )
