"""schemas.files: the SDK's ZIP wrapper, raw files, and hostile archives."""

from __future__ import annotations

import hashlib
import io
import re
import stat
import struct
import tracemalloc
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from schemas.files import (
    File,
    UnsafeArchive,
    ZipLimits,
    extract,
    files_of,
    is_zip,
    safe_name,
    wrap,
)

MiB = 1024 * 1024
UUID_ENTRY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.doc")
DOC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "Quyết định 1896/QĐ-TTg".encode() * 50
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n"


def make_zip(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """An ordinary archive, written by zipfile."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@dataclass
class Raw:
    """One hand-made entry, for the archives zipfile refuses to write."""

    name: bytes
    content: bytes = b"hello"
    deflate: bool = False
    payload: bytes | None = None  # the bytes stored, when not derived from content
    crc: int | None = None
    size: int | None = None  # the declared uncompressed size
    method: int | None = None
    flags: int = 0
    external_attr: int = 0
    offset: int | None = None  # point the central record at an earlier local header

    def stored(self) -> bytes:
        if self.payload is not None:
            return self.payload
        if self.deflate:
            packer = zlib.compressobj(9, zlib.DEFLATED, -15)
            return packer.compress(self.content) + packer.flush()
        return self.content


def craft(*entries: Raw, count: int | None = None) -> bytes:
    """A ZIP laid out by hand: local headers, central directory, end record."""
    body, central = bytearray(), bytearray()
    for entry in entries:
        stored = entry.stored()
        method = entry.method if entry.method is not None else (8 if entry.deflate else 0)
        crc = zlib.crc32(entry.content) if entry.crc is None else entry.crc
        size = len(entry.content) if entry.size is None else entry.size
        offset = len(body) if entry.offset is None else entry.offset
        fields = (entry.flags, method, 0, 0x21, crc, len(stored), size, len(entry.name))
        if entry.offset is None:
            body += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, *fields, 0) + entry.name + stored
        central += struct.pack(
            "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, *fields, 0, 0, 0, 0,
            entry.external_attr, offset,
        ) + entry.name  # fmt: skip
    count = len(entries) if count is None else count
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), len(body), 0)
    return bytes(body + central + end)


def zero_bomb(mib: int) -> tuple[bytes, int]:
    """A deflate stream of ``mib`` MiB of zeros (about 1 KiB per MiB) and its CRC.

    Built from one fully flushed segment repeated: a full flush byte-aligns the output
    and forgets the window, so copies of the segment concatenate into a valid stream.
    Nothing of the uncompressed size is ever held in memory.
    """
    zeros = bytes(MiB)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = packer.compress(zeros) + packer.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    return segment * mib + b"\x03\x00", crc  # b"\x03\x00": an empty final block


def refusal(data: bytes, limits: ZipLimits | None = None, name: str = "a.doc") -> str:
    with pytest.raises(UnsafeArchive) as caught:
        if limits is None:
            files_of(data, name=name, content_type="application/zip")
        else:
            files_of(data, name=name, content_type="application/zip", limits=limits)
    assert caught.value.reason == str(caught.value)
    return caught.value.reason


# -- the SDK's wrapper and raw files ------------------------------------------------


def test_sdk_wrapper_round_trip_keeps_the_original_name_and_the_inner_file() -> None:
    carried = wrap("1896_QD-TTg.doc", DOC)
    assert is_zip(carried)
    assert UUID_ENTRY.fullmatch(zipfile.ZipFile(io.BytesIO(carried)).namelist()[0])
    [file] = files_of(carried, name="1896_QD-TTg.doc", content_type="application/zip")
    assert file == File("1896_QD-TTg.doc", DOC, "application/msword", wrapped=True)
    assert file.sha256 == hashlib.sha256(DOC).hexdigest()
    assert file.size == len(DOC)
    assert not file.is_pdf


def test_a_wrapped_pdf_is_typed_from_its_original_name_and_is_a_pdf() -> None:
    carried = wrap("QĐ 30-2020.pdf", PDF)
    [file] = files_of(carried, name="QĐ 30-2020.pdf", content_type="application/x-zip-compressed")
    assert (file.name, file.content_type, file.wrapped, file.is_pdf) == (
        "QĐ 30-2020.pdf",
        "application/pdf",
        True,
        True,
    )


def test_wrap_names_the_entry_by_the_id_and_the_original_extension_and_is_stable() -> None:
    entry_id = "0b6f1a52-3c1e-4c84-9d0e-4f5a8b2c7d11"
    carried = wrap("Báo cáo.DOCX", b"x", entry_id=entry_id)
    assert zipfile.ZipFile(io.BytesIO(carried)).namelist() == [entry_id + ".DOCX"]
    assert zipfile.ZipFile(io.BytesIO(carried)).infolist()[0].compress_type == 8
    assert wrap("Báo cáo.DOCX", b"x", entry_id=entry_id) == carried
    assert zipfile.ZipFile(io.BytesIO(wrap("README", b"x", entry_id=entry_id))).namelist() == [
        entry_id
    ]
    with pytest.raises(ValueError):
        wrap("a.doc", b"x", entry_id="../evil")


def test_a_raw_pdf_is_returned_as_sent() -> None:
    [file] = files_of(PDF, name="7816-VPCP.pdf", content_type="application/pdf")
    assert file == File("7816-VPCP.pdf", PDF, "application/pdf", wrapped=False)
    assert file.is_pdf


def test_a_pdf_name_holding_a_few_bytes_of_text_is_not_a_pdf() -> None:
    [file] = files_of(b"test", name="VANBAN.PDF", content_type="application/pdf")
    assert file.content_type == "application/pdf"
    assert not file.is_pdf


def test_a_generic_or_malformed_declared_type_is_guessed_from_the_name() -> None:
    for declared in ("application/octet-stream", "", "PDF file", "Application/PDF; name=a"):
        [file] = files_of(PDF, name="a.PDF", content_type=declared)
        assert file.content_type == "application/pdf"
    [file] = files_of(b"?", name="no-extension", content_type="")
    assert file.content_type == "application/octet-stream"


def test_a_multi_entry_archive_yields_each_file_under_its_own_name() -> None:
    carried = make_zip(
        {"docs/": b"", "docs/Quyết định.pdf": PDF, "phu-luc.doc": DOC, "inner.zip": wrap("x", b"")}
    )
    files = files_of(carried, name="ho-so.doc", content_type="application/zip")
    assert [(f.name, f.content_type, f.wrapped) for f in files] == [
        ("Quyết định.pdf", "application/pdf", True),
        ("phu-luc.doc", "application/msword", True),
        ("inner.zip", "application/zip", True),  # a ZIP inside is just a file
    ]
    assert files[0].data == PDF and files[1].data == DOC


def test_declared_application_zip_that_is_not_a_zip_is_refused() -> None:
    assert refusal(PDF) == "declared application/zip but is not a ZIP archive"


def test_a_wrapper_holding_no_file_is_refused() -> None:
    assert "no file" in refusal(make_zip({}))
    assert "no file" in refusal(make_zip({"empty/": b""}))


def test_a_zip_the_user_attached_is_itself_the_attachment() -> None:
    archive = make_zip({"a.pdf": PDF, "b.doc": DOC})
    [file] = files_of(archive, name="Hồ sơ.zip", content_type="application/zip")
    assert file == File("Hồ sơ.zip", archive, "application/zip", wrapped=False)


def test_the_sdk_wrapping_of_a_user_zip_is_unwrapped_once_not_recursed() -> None:
    archive = make_zip({"a.pdf": PDF, "b.doc": DOC})
    [file] = files_of(wrap("Hồ sơ.zip", archive), name="Hồ sơ.zip", content_type="application/zip")
    assert file == File("Hồ sơ.zip", archive, "application/zip", wrapped=True)


def test_a_sender_that_wraps_but_declares_the_original_type_is_unwrapped() -> None:
    [file] = files_of(wrap("a.pdf", PDF), name="a.pdf", content_type="application/pdf")
    assert (file.data, file.wrapped) == (PDF, True)


def test_a_docx_is_a_zip_but_never_unwrapped() -> None:
    docx = make_zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w:document/>"})
    ooxml = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    for declared in (ooxml, "application/zip"):
        [file] = files_of(docx, name="Tờ trình.docx", content_type=declared)
        assert file == File("Tờ trình.docx", docx, ooxml, wrapped=False)


def test_a_single_entry_zip_not_named_like_the_wrapper_is_a_raw_file() -> None:
    archive = make_zip({"readme.pdf": PDF})
    [file] = files_of(archive, name="a.pdf", content_type="application/pdf")
    assert (file.data, file.wrapped) == (archive, False)


# -- hostile archives ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (b"../x.pdf", "path traversal"),
        (b"a/../../x.pdf", "path traversal"),
        (b"/etc/passwd", "absolute path"),
        (b"C:\\x.pdf", "backslash"),
        (b"C:x.pdf", "drive letter"),
        (b"\\\\server\\share\\x.pdf", "backslash"),
        (b"docs\\x.pdf", "backslash"),
        (b"a.pdf\x00.exe", "control character"),
        (b"a\x1bb.pdf", "control character"),
        (b"./x.pdf", "'.' path part"),
        (b"a//x.pdf", "empty or '.' path part"),
    ],
)
def test_a_dangerous_entry_name_is_refused(entry: bytes, reason: str) -> None:
    carried = craft(Raw(b"ok.pdf", PDF), Raw(entry))
    assert reason in refusal(carried)


def test_a_symlink_entry_is_refused() -> None:
    link = zipfile.ZipInfo("passwd")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(link, "/etc/passwd")
    assert "symbolic link" in refusal(buffer.getvalue())


def test_an_encrypted_entry_is_refused() -> None:
    assert "encrypted" in refusal(craft(Raw(b"a.doc", DOC, flags=0x1)))


def test_too_many_entries_are_refused() -> None:
    archive = make_zip({f"{n}.txt": b"x" for n in range(65)})
    assert "too many entries: 65" in refusal(archive)
    assert len(files_of(archive, name="a.doc", content_type="application/zip",
                        limits=ZipLimits(max_entries=65))) == 65  # fmt: skip


def test_a_huge_central_directory_is_counted_before_zipfile_parses_it() -> None:
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0x21, 0, 0, 0, 1, 0) + b"a"
    record = struct.pack(
        "<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0x21, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0
    )
    n = 10_000
    central = b"".join(record + f"{i:x}"[-1:].encode() for i in range(n))
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, len(central), len(local), 0)
    archive = local + central + end
    tracemalloc.start()
    try:
        reason = refusal(archive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reason == "too many entries: 10000, the limit is 64"
    assert peak < 2 * MiB  # no ZipInfo per record


def test_a_central_directory_that_lies_about_its_count_is_refused() -> None:
    carried = craft(Raw(b"a.pdf", PDF), Raw(b"b.pdf", PDF), count=1)
    assert "says 1 entries but holds 2" in refusal(carried)


def test_a_truncated_or_garbled_archive_is_refused() -> None:
    carried = wrap("a.doc", DOC)
    assert "corrupt archive" in refusal(carried[:-30])
    assert "corrupt archive" in refusal(carried[:40] + b"\xff" * 40 + carried[80:])


def test_a_bad_crc_is_refused() -> None:
    assert "CRC" in refusal(craft(Raw(b"a.doc", DOC, deflate=True, crc=1234)))


def test_duplicate_entry_names_are_refused() -> None:
    carried = craft(Raw(b"a.pdf", PDF), Raw(b"a.pdf", b"%PDF-evil"))
    assert "duplicate entry name" in refusal(carried)


def test_overlapping_entries_are_refused() -> None:
    carried = craft(Raw(b"a.doc", DOC, deflate=True), Raw(b"b.doc", DOC, deflate=True, offset=0))
    assert "overlap" in refusal(carried)


def test_a_bzip2_entry_is_refused_because_its_output_cannot_be_capped() -> None:
    assert "compression method 12" in refusal(make_zip({"a.doc": DOC}, zipfile.ZIP_BZIP2))


def test_a_declared_size_larger_than_the_data_is_refused() -> None:
    reason = refusal(craft(Raw(b"a.doc", DOC, deflate=True, size=len(DOC) + 1000)))
    assert f"declares {len(DOC) + 1000} bytes but holds {len(DOC)}" in reason


def test_a_stored_entry_whose_sizes_disagree_is_refused() -> None:
    assert "sizes disagree" in refusal(craft(Raw(b"a.doc", DOC, size=10)))


def test_a_deflate_bomb_is_refused_from_its_declared_size() -> None:
    payload, crc = zero_bomb(300)
    assert len(payload) < 400_000  # 300 MiB of zeros in about 300 KB
    carried = craft(Raw(b"zeros.doc", b"", payload=payload, method=8, crc=crc, size=300 * MiB))
    assert "over the limit of 268435456 per entry" in refusal(carried)
    assert "over the limit of 4194304" in refusal(carried, ZipLimits(max_entry_bytes=4 * MiB))


def test_a_deflate_bomb_with_a_lying_size_is_refused_without_inflating_it() -> None:
    payload, crc = zero_bomb(300)
    # Declares 2 MiB (a believable ratio): decompression must stop at the claim.
    carried = craft(Raw(b"zeros.doc", b"", payload=payload, method=8, crc=crc, size=2 * MiB))
    tracemalloc.start()
    try:
        reason = refusal(carried, ZipLimits(max_entry_bytes=4 * MiB, max_total_bytes=4 * MiB))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "corrupt archive" in reason and "CRC" in reason
    assert peak < 8 * MiB


def test_a_compression_ratio_past_the_floor_is_refused() -> None:
    payload, crc = zero_bomb(8)
    carried = craft(Raw(b"zeros.doc", b"", payload=payload, method=8, crc=crc, size=8 * MiB))
    assert "compression ratio over 200.0" in refusal(carried)


def test_a_small_very_compressible_file_passes_under_the_ratio_floor() -> None:
    blank = bytes(512 * 1024)
    [file] = files_of(wrap("blank.doc", blank), name="blank.doc", content_type="application/zip")
    assert file.data == blank


def test_the_total_of_all_entries_is_capped() -> None:
    archive = make_zip({"a.bin": bytes(3000), "b.bin": bytes(3000)}, zipfile.ZIP_STORED)
    limits = ZipLimits(max_entry_bytes=4000, max_total_bytes=5000)
    assert "6000 bytes in all, over the limit of 5000" in refusal(archive, limits)


def test_zip_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ZipLimits(max_entries=0)


# -- names on disk ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("1896_QD-TTg.doc", "1896_QD-TTg.doc"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\win.ini", "win.ini"),
        ("a\x00b\x1f.pdf", "ab.pdf"),
        ("\u202egpj.exe", "gpj.exe"),
        ('a<b>:"|?*.pdf', "a_b______.pdf"),
        ("  name. . ", "name"),
        ("", "file"),
        (".", "file"),
        ("..", "file"),
        ("docs/", "file"),
        ("NUL.txt", "_NUL.txt"),
        ("con", "_con"),
        ("Quye\u0302\u0301t.pdf", "Quyết.pdf"),
    ],
)
def test_safe_name(name: str, safe: str) -> None:
    assert safe_name(name) == safe


def test_safe_name_fits_255_bytes_and_keeps_the_extension() -> None:
    name = safe_name("Đ" * 300 + ".pdf")
    assert name.endswith("Đ.pdf") and len(name.encode()) <= 255


def test_extract_never_writes_outside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    files = [File(n, b"x", "text/plain", False) for n in ("../../evil.txt", "/etc/cron.d/x", "")]
    paths = extract(files, folder)
    assert [p.name for p in paths] == ["evil.txt", "x", "file"]
    assert all(p.parent == folder.resolve() for p in paths)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["evil.txt", "file", "out", "x"]


def test_extract_never_overwrites_nor_follows_a_planted_symlink(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(b"kept")
    outside = tmp_path / "target.pdf"
    (folder / "b.pdf").symlink_to(outside)
    files = [File(n, PDF, "application/pdf", True) for n in ("a.pdf", "b.pdf", "a.pdf")]
    paths = extract(files, folder)
    assert [p.name for p in paths] == ["a (2).pdf", "b (2).pdf", "a (3).pdf"]
    assert (folder / "a.pdf").read_bytes() == b"kept"
    assert not outside.exists()
    assert all(p.read_bytes() == PDF for p in paths)


def test_extract_writes_the_unwrapped_file_under_its_original_name(tmp_path: Path) -> None:
    files = files_of(
        wrap("1896_QD-TTg.doc", DOC), name="1896_QD-TTg.doc", content_type="application/zip"
    )
    [path] = extract(files, tmp_path)
    assert path == tmp_path.resolve() / "1896_QD-TTg.doc" and path.read_bytes() == DOC
