"""Realistic Vietnamese administrative documents for tests, the demo and benchmarks.

Everything here is deterministic given a :class:`random.Random` and ``now``; the
document type codes and agency abbreviations are illustrative, not an official list.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime

from schemas._common import VIETNAM
from schemas.codec import to_bytes
from schemas.edoc import (
    Attachment,
    Business,
    Edoc,
    Organization,
    Priority,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    SteeringType,
    TraceHeader,
)
from schemas.status import Status, StatusCode

DOCUMENT_TYPES: dict[int, tuple[str, str | None]] = {
    1: ("Công văn", None),
    2: ("Quyết định", "QĐ"),
    3: ("Chỉ thị", "CT"),
    4: ("Thông báo", "TB"),
    5: ("Báo cáo", "BC"),
    6: ("Kế hoạch", "KH"),
    7: ("Tờ trình", "TTr"),
}
"""Type code → (type name, notation prefix; a Công văn has none)."""

AGENCIES: dict[str, tuple[str, str]] = {
    "000.00.00.G01": ("Bộ Công an", "BCA"),
    "000.00.00.G03": ("Bộ Giáo dục và Đào tạo", "BGDĐT"),
    "000.00.00.G09": ("Bộ Nội vụ", "BNV"),
    "000.00.00.G12": ("Bộ Tài chính", "BTC"),
    "000.00.00.G14": ("Bộ Thông tin và Truyền thông", "BTTTT"),
    "000.00.00.G15": ("Bộ Tư pháp", "BTP"),
    "000.00.00.G18": ("Bộ Y tế", "BYT"),
    "000.00.00.G22": ("Văn phòng Chính phủ", "VPCP"),
    "000.00.00.H29": ("Ủy ban nhân dân thành phố Hà Nội", "UBND"),
    "000.00.00.H41": ("Ủy ban nhân dân tỉnh Nghệ An", "UBND"),
    "000.00.00.H58": ("Ủy ban nhân dân Thành phố Hồ Chí Minh", "UBND"),
}
"""A few well-known agencies: code → (name, abbreviation used in notations)."""

SUBJECTS: tuple[str, ...] = (
    "Về việc triển khai Nghị định số 30/2020/NĐ-CP về công tác văn thư",
    "Về việc đẩy mạnh gửi, nhận văn bản điện tử có ký số trên Trục liên thông văn bản quốc gia",
    "Về việc báo cáo tình hình thực hiện nhiệm vụ Chính phủ, Thủ tướng Chính phủ giao",
    "Về việc tổ chức Hội nghị tổng kết công tác cải cách hành chính năm 2026",
    "Về việc tăng cường công tác phòng, chống thiên tai và tìm kiếm cứu nạn",
    "Về việc hướng dẫn xây dựng kế hoạch ứng dụng công nghệ thông tin giai đoạn 2026-2030",
    "Về việc góp ý dự thảo Thông tư quy định chi tiết về quản lý văn bản điện tử",
    "Về việc cung cấp số liệu phục vụ xây dựng Báo cáo kinh tế - xã hội quý IV",
    "Về việc rà soát, cập nhật cơ sở dữ liệu quốc gia về cán bộ, công chức, viên chức",
    "Về việc bảo đảm an toàn thông tin mạng trong dịp Tết Nguyên đán",
    "Về việc thực hiện chế độ báo cáo thống kê định kỳ theo quy định",
    "Về việc triển khai Đề án phát triển ứng dụng dữ liệu về dân cư, định danh và xác thực điện tử",
    "Về việc chấn chỉnh kỷ luật, kỷ cương hành chính trong các cơ quan nhà nước",
    "Về việc phân bổ dự toán ngân sách nhà nước năm 2027",
    "Về việc tăng cường quản lý chất lượng nước sạch và vệ sinh môi trường nông thôn",
)

CONTENTS: tuple[str, ...] = (
    "Đề nghị các cơ quan, đơn vị khẩn trương triển khai thực hiện và báo cáo kết quả "
    "trước ngày 15 của tháng cuối quý.",
    "Văn phòng Chính phủ thông báo ý kiến chỉ đạo của Thủ tướng Chính phủ như sau: "
    "giao các Bộ, ngành, địa phương chủ động phối hợp thực hiện.",
    "Trong quá trình thực hiện, nếu có vướng mắc, đề nghị phản ánh kịp thời để được "
    "hướng dẫn, giải quyết.",
)

UNITS: tuple[str, ...] = ("VP", "KSTT", "TH", "KGVX", "PL", "TCCV", "CN", "NN", "QHQT", "KTTH")

SIGNERS: tuple[tuple[str, str, str | None], ...] = (
    ("Nguyễn Văn An", "Bộ trưởng", None),
    ("Trần Thị Bình", "Thứ trưởng", "KT. BỘ TRƯỞNG"),
    ("Lê Minh Châu", "Chủ tịch", "TM. ỦY BAN NHÂN DÂN"),
    ("Phạm Quốc Dũng", "Phó Chủ nhiệm", "KT. BỘ TRƯỞNG, CHỦ NHIỆM"),
    ("Hoàng Thị Hạnh", "Chánh Văn phòng", "TL. BỘ TRƯỞNG"),
    ("Đặng Đức Khải", "Phó Chủ tịch", "KT. CHỦ TỊCH"),
)

PLACES: tuple[str, ...] = ("Hà Nội", "Nghệ An", "Thành phố Hồ Chí Minh", "Đà Nẵng", "Cần Thơ")

_PDF_HEAD = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
_PDF_TAIL = b"\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def organization(code: str) -> Organization:
    """An :class:`Organization` for ``code``, named when it is a well-known agency."""
    known = AGENCIES.get(code)
    return Organization(code, name=known[0] if known else None)


def abbreviation(code: str) -> str:
    """The abbreviation an agency uses in its document notations."""
    known = AGENCIES.get(code)
    if known:
        return known[1]
    return "UBND" if ".H" in code else "VP"


def pdf_like(size: int, rng: random.Random) -> bytes:
    """``size`` bytes that look like a PDF file (header, random body, trailer)."""
    if size < len(_PDF_HEAD) + len(_PDF_TAIL):
        return rng.randbytes(size)
    body = rng.randbytes(size - len(_PDF_HEAD) - len(_PDF_TAIL))
    return _PDF_HEAD + body + _PDF_TAIL


def _as_org(value: str | Organization) -> Organization:
    return value if isinstance(value, Organization) else organization(value)


def sample_edoc(
    sender: str | Organization,
    recipients: Sequence[str | Organization],
    *,
    document_number: int | str | None = None,
    subject: str | None = None,
    size: int | None = None,
    rng: random.Random | None = None,
    due_date: date | None = None,
    priority: Priority | int = Priority.NORMAL,
    business: Business | None = None,
    response_for: Sequence[ResponseFor] = (),
    promulgation_date: date | None = None,
    now: datetime | None = None,
) -> Edoc:
    """A realistic unsigned document from ``sender`` to ``recipients`` (codes or groups).

    With ``size``, a PDF-like attachment pads the serialized unsigned document to
    about ``size`` bytes (within a few bytes); a ``size`` below what the document
    needs without an attachment leaves it unpadded.
    Deterministic given ``rng`` and ``now`` (which default to a fresh Random and the
    current time); ``promulgation_date`` defaults to ``now``'s date in Vietnam.
    """
    rng = rng or random.Random()
    now = now or datetime.now(UTC)
    sender_org = _as_org(sender)
    type_code = rng.choice(sorted(DOCUMENT_TYPES))
    type_name, type_prefix = DOCUMENT_TYPES[type_code]
    agency = abbreviation(sender_org.organ_id)
    notation = f"{agency}-{rng.choice(UNITS)}" if type_prefix is None else f"{type_prefix}-{agency}"
    full_name, position, competence = rng.choice(SIGNERS)
    edoc = Edoc(
        sender=sender_org,
        recipients=tuple(_as_org(r) for r in recipients),
        number=str(document_number if document_number is not None else rng.randint(1, 9999)),
        notation=notation,
        promulgation_date=promulgation_date or now.astimezone(VIETNAM).date(),
        subject=subject if subject is not None else rng.choice(SUBJECTS),
        document_type=type_code,
        type_name=type_name,
        place=rng.choice(PLACES),
        content=rng.choice(CONTENTS),
        signer=SignerInfo(full_name, position, competence),
        due_date=due_date,
        steering_type=SteeringType.NOT_DIRECTIVE,
        priority=Priority(priority),
        promulgation_amount=rng.randint(1, 100),
        page_amount=rng.randint(1, 20),
        response_for=tuple(response_for),
        trace=(TraceHeader(sender_org.organ_id, now),),
        business=business or Business(),
    )
    if size is None:
        return edoc
    return _padded(edoc, size, rng)


def _padded(edoc: Edoc, size: int, rng: random.Random) -> Edoc:
    name = f"{edoc.type_name or 'Văn bản'} {edoc.number}.pdf"
    empty = Attachment("att-1", "application/pdf", name, b"")
    bare = len(to_bytes(_with(edoc, (empty,))))
    if size <= bare:
        return edoc
    # base64 turns every 3 bytes into 4 characters.
    data_size = (size - bare) // 4 * 3
    return _with(edoc, (Attachment("att-1", "application/pdf", name, pdf_like(data_size, rng)),))


def _with(edoc: Edoc, attachments: tuple[Attachment, ...]) -> Edoc:
    return replace(edoc, attachments=attachments, manifest=())


def sample_status(
    sender: str,
    edoc: Edoc,
    code: StatusCode = StatusCode.ARRIVED,
    *,
    now: datetime | None = None,
    description: str | None = None,
) -> Status:
    """A status that recipient ``sender`` reports on ``edoc`` (for 13: its sender to its
    first recipient)."""
    addressee = edoc.recipient_ids[0] if StatusCode(code).from_sender else edoc.sender.organ_id
    return Status.about(
        organization(sender),
        edoc.document_id,
        code,
        now or datetime.now(UTC),
        addressee=addressee,
        description=description,
        staff=StaffInfo(department="Văn phòng", staff="Nguyễn Thị Lan", email="vanthu@example.vn"),
        response_for=ResponseFor.of(edoc),
    )
