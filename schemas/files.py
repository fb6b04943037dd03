"""The files an attachment carries: the national SDK's ZIP wrapper, raw files, hostile ZIPs.

>>> from schemas.files import files_of, wrap
>>> doc = b"\\xd0\\xcf\\x11\\xe0 a Word 97 file"
>>> carried = wrap("1896_QD-TTg.doc", doc)  # what the national SDK puts in the edXML
>>> [file] = files_of(carried, name="1896_QD-TTg.doc", content_type="application/zip")
>>> file.name, file.content_type, file.wrapped, file.data == doc
('1896_QD-TTg.doc', 'application/msword', True, True)
>>> [pdf] = files_of(b"%PDF-1.7 ...", name="QD.PDF", content_type="application/pdf")
>>> pdf.wrapped, pdf.is_pdf
(False, True)

The national SDK wraps every attached file in a ZIP holding one entry named
``<uuid>.<ext>``, declares ``ContentType`` ``application/zip`` and keeps the original
name in ``AttachmentName``; other senders put the raw file there (EDXML.md section 1).
:func:`files_of` decides which it is, in this order:

1. Declared ``application/zip`` (or ``x-zip-compressed`` / ``x-zip``) while the name
   does not end in ``.zip``: the SDK's wrapper. The bytes must be a ZIP, or the
   attachment is refused (the declaration and the bytes disagree). One file inside:
   it is returned under the original name, typed from that name. Several: each under
   its own (sanitized) entry name. None: refused. The one exception is a ZIP that is
   an OOXML/ODF package (``[Content_Types].xml`` or ``mimetype`` among its entries): that
   is a ``.docx``/``.odt``... declared loosely, returned whole as the file it is.
2. Otherwise, bytes that are a ZIP holding exactly one entry named ``<uuid><ext>``
   with the attachment's own extension: the SDK's wrapper too. This is how the SDK's
   wrapping of a ``.zip`` the user attached looks (its ``AttachmentName`` ends in
   ``.zip``), and how senders that wrap but declare the original type look.
3. Anything else is a raw file, returned as it is, even when its bytes are a ZIP: a
   ``.zip`` the user attached is itself the attachment (never opened here), and
   ``.docx``, ``.xlsx``, ``.odt`` are ZIPs too. Magic bytes alone never unwrap.

Unwrapping is hardened: the archive is checked whole (entry count, names, flags,
declared sizes, layout) and every entry decompressed under running caps before
anything is returned; any problem raises :class:`UnsafeArchive`. A ZIP inside the
wrapper is just a file: nothing is unpacked recursively.

Whether a file is a PDF depends on its bytes (``%PDF-``), never on its name or its
declared type (EDXML.md section 3).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import mimetypes
import re
import stat
import struct
import unicodedata
import uuid
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_LIMITS",
    "File",
    "UnsafeArchive",
    "ZipLimits",
    "extract",
    "files_of",
    "guess_type",
    "is_zip",
    "safe_name",
    "wrap",
]

ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed", "application/x-zip"})
# Declared types that say nothing about the file: the name's extension knows better.
GENERIC_TYPES = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}
)
OCTET_STREAM = "application/octet-stream"

_MiB = 1024 * 1024


@dataclass(frozen=True)
class ZipLimits:
    """How much an archive may hold before it is refused as hostile.

    Sizes are uncompressed bytes. The ratio (uncompressed / compressed, per entry) is
    only checked past ``ratio_floor_bytes``, so small, very compressible files (a page
    of blank text) pass while a deflate bomb does not.
    """

    max_entries: int = 64
    max_entry_bytes: int = 256 * _MiB
    max_total_bytes: int = 512 * _MiB
    max_ratio: float = 200.0
    ratio_floor_bytes: int = _MiB

    def __post_init__(self) -> None:
        for name in ("max_entries", "max_entry_bytes", "max_total_bytes", "max_ratio"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ZipLimits.{name} must be positive")
        if self.ratio_floor_bytes < 0:
            raise ValueError("ZipLimits.ratio_floor_bytes must not be negative")


DEFAULT_LIMITS = ZipLimits()


class UnsafeArchive(ValueError):
    """A ZIP refused before anything of it is used; ``reason`` says why.

    Reasons name the problem: a bomb (size, ratio), path traversal or another bad
    entry name, too many entries, an encrypted or symlink entry, duplicate names,
    overlapping entries, or a corrupt archive (bad CRC, truncated or lying central
    directory).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class File:
    """One file an attachment carries.

    ``name`` is the name to show; it comes from the sender and is not safe as a path
    (write with :func:`extract`, or through :func:`safe_name`). ``wrapped`` is true when
    the file came out of a ZIP wrapper.
    """

    name: str
    data: bytes = field(repr=False)
    content_type: str
    wrapped: bool

    @property
    def sha256(self) -> str:
        """The SHA-256 of the file's bytes, lower-case hex."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        """The file's size in bytes."""
        return len(self.data)

    @property
    def is_pdf(self) -> bool:
        """Whether the bytes are a PDF (begin with ``%PDF-``), whatever the name says."""
        return self.data.startswith(b"%PDF-")


def is_zip(data: bytes) -> bool:
    """Whether ``data`` begins like a ZIP archive (a local header, or an empty archive)."""
    return data[:4] in (b"PK\x03\x04", b"PK\x05\x06")


def files_of(
    data: bytes, *, name: str, content_type: str, limits: ZipLimits = DEFAULT_LIMITS
) -> list[File]:
    """The files one attachment carries (see the module docstring for the rules).

    ``name`` and ``content_type`` are the attachment's ``AttachmentName`` and declared
    ``ContentType``. Raises :class:`UnsafeArchive` when a wrapper is hostile or corrupt,
    declared ``application/zip`` but not a ZIP, or holds no file.
    """
    declared = _media_type(content_type)
    if declared in ZIP_TYPES and not _is_zip_name(name):
        if not is_zip(data):
            raise UnsafeArchive("declared application/zip but is not a ZIP archive")
        directory = _read_directory(data)
        if directory.package:
            return [File(name, data, guess_type(name), wrapped=False)]
        return _unwrap(data, directory, name, limits)
    if is_zip(data):
        try:
            shape: _Directory | None = _read_directory(data)
        except UnsafeArchive:
            shape = None  # not a wrapper: the raw file is passed on, never opened
        if shape is not None and _has_wrapper_shape(shape, name):
            return _unwrap(data, shape, name, limits)
    if declared in GENERIC_TYPES or not _MEDIA_TYPE.fullmatch(declared):
        declared = guess_type(name)
    return [File(name, data, declared, wrapped=False)]


def wrap(name: str, data: bytes, *, entry_id: str | None = None) -> bytes:
    """Wrap one file as the national SDK does.

    The result is a deflated ZIP with one entry named ``<entry_id><ext>``: a random
    UUID unless ``entry_id`` is given, then the original name's extension as written
    (``1896_QD-TTg.doc`` → ``<uuid>.doc``; no extension, no suffix). The entry's time
    is fixed, so the same input and ``entry_id`` give the same bytes.
    """
    entry_id = str(uuid.uuid4()) if entry_id is None else entry_id
    if _name_problem(entry_id) or "/" in entry_id:
        raise ValueError(f"entry_id {entry_id!r} is not a plain file name")
    _, ext = _split_ext(safe_name(name))
    info = zipfile.ZipInfo(entry_id + ext, (1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, data)
    return buffer.getvalue()


def guess_type(name: str) -> str:
    """The media type for a file name's extension; ``application/octet-stream`` if unknown.

    Uses Python's built-in table (not the host's ``/etc/mime.types``, so every machine
    agrees) plus the office formats agencies exchange.
    """
    base = re.split(r"[/\\]", name)[-1]
    dot = base.rfind(".")
    if dot < 0:
        return OCTET_STREAM
    ext = base[dot:]
    return _TYPES.get(ext) or _TYPES.get(ext.lower()) or OCTET_STREAM


def safe_name(name: str) -> str:
    """A file name safe to create in a folder, on Linux and on Windows.

    Keeps only the last path part (``/`` or ``\\``), normalizes to NFC, drops control
    and bidirectional-override characters, replaces characters Windows forbids
    (``<>:"|?*``), trims surrounding spaces and trailing dots, guards Windows device
    names (``CON``, ``NUL.txt``...), fits 255 UTF-8 bytes keeping the extension, and
    falls back to ``file`` when nothing is left (``""``, ``.``, ``..``).
    """
    base = re.split(r"[/\\]", name)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if not _is_control(ch) and ch not in _BIDI_CONTROLS)
    base = _WINDOWS_FORBIDDEN.sub("_", base).strip().rstrip(". ")
    if not base:
        base = "file"
    if _WINDOWS_DEVICE.fullmatch(base):
        base = "_" + base
    stem, ext = _split_ext(base)
    return _fit(stem, ext)


def extract(files: Sequence[File], directory: Path) -> list[Path]:
    """Write each file into ``directory`` (created if missing); return the paths, in order.

    Each file goes under its :func:`safe_name`, so nothing lands outside the folder.
    An existing file is never overwritten nor a planted symlink followed (files are
    created exclusively); a taken name becomes ``name (2).ext``, ``name (3).ext``...
    """
    directory.mkdir(parents=True, exist_ok=True)
    root = directory.resolve()
    return [_create(root, safe_name(file.name), file.data) for file in files]


# -- unwrapping ---------------------------------------------------------------------

_CHUNK = 64 * 1024
_LOCAL_MAGIC = b"PK\x03\x04"
_CENTRAL_MAGIC = b"PK\x01\x02"
_END_MAGIC = b"PK\x05\x06"
_END64_LOCATOR_MAGIC = b"PK\x06\x07"
_END64_MAGIC = b"PK\x06\x06"
_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END64_LOCATOR = struct.Struct("<4sLQL")
_END64 = struct.Struct("<4sQ2H2L4Q")
_CENTRAL_SIZE = 46
_LOCAL_SIZE = 30
_FLAG_ENCRYPTED = 0x1
_FLAG_STRONG_ENCRYPTION = 0x40
_FLAG_UTF8 = 0x800
# Only these: zipfile feeds bzip2 and LZMA data to the decompressor without an output
# cap, so one read of a bzip2 bomb could allocate gigabytes before any check runs.
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
# What zipfile raises on a damaged archive or entry (RuntimeError: an encryption flag
# zipfile noticed before we did).
_CORRUPT = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    UnicodeDecodeError,
    struct.error,
)
_PACKAGE_MARKERS = frozenset({b"[Content_Types].xml", b"mimetype"})
_WRAPPER_ENTRY = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\.[^/\\]*)?", re.IGNORECASE
)


@dataclass(frozen=True)
class _Directory:
    """What a walk of the central directory found, before zipfile parses it."""

    start: int  # where the central directory begins: entry data must end before it
    count: int
    first_name: str | None
    package: bool


def _read_directory(data: bytes) -> _Directory:
    """Walk the central directory the way zipfile will, counting what it really holds.

    zipfile builds a ZipInfo for every record before anyone can count them, so a
    central directory of a million tiny records would cost a lot of memory; walking it
    first keeps only a count. It also refuses a directory that lies about itself.
    """
    end = _find_end(data)
    _, disk, cd_disk, _, count, cd_size, _, _ = _END.unpack_from(data, end)
    location = end
    locator = end - _END64_LOCATOR.size
    if locator >= 0 and data[locator : locator + 4] == _END64_LOCATOR_MAGIC:
        _, locator_disk, _, disks = _END64_LOCATOR.unpack_from(data, locator)
        if locator_disk != 0 or disks > 1:
            raise UnsafeArchive("corrupt archive: spans several disks")
        record = locator - _END64.size
        # zipfile assumes the zip64 record sits right before its locator; so do we.
        if record >= 0 and data[record : record + 4] == _END64_MAGIC:
            fields = _END64.unpack_from(data, record)
            disk, cd_disk, count, cd_size = fields[4], fields[5], fields[7], fields[8]
            location = record
    if disk != 0 or cd_disk != 0:
        raise UnsafeArchive("corrupt archive: spans several disks")
    start = location - cd_size
    if start < 0:
        raise UnsafeArchive("corrupt archive: the central directory lies about its size")
    held, pos, first_name, package = 0, start, None, False
    while pos < location:
        if pos + _CENTRAL_SIZE > location or data[pos : pos + 4] != _CENTRAL_MAGIC:
            raise UnsafeArchive("corrupt archive: truncated or bad central directory")
        (flags,) = struct.unpack_from("<H", data, pos + 8)
        name_len, extra_len, comment_len = struct.unpack_from("<3H", data, pos + 28)
        raw_name = data[pos + _CENTRAL_SIZE : pos + _CENTRAL_SIZE + name_len]
        pos += _CENTRAL_SIZE + name_len + extra_len + comment_len
        if pos > location:
            raise UnsafeArchive("corrupt archive: truncated central directory")
        held += 1
        package = package or raw_name in _PACKAGE_MARKERS
        if first_name is None:
            first_name = raw_name.decode("utf-8" if flags & _FLAG_UTF8 else "cp437", "replace")
    if held != count:
        raise UnsafeArchive(
            f"corrupt archive: the central directory says {count} entries but holds {held}"
        )
    return _Directory(start, held, first_name, package)


def _find_end(data: bytes) -> int:
    """The offset of the end-of-central-directory record, found as zipfile finds it."""
    tail = len(data) - _END.size
    if tail >= 0 and data[tail : tail + 4] == _END_MAGIC and data[-2:] == b"\0\0":
        return tail
    found = data.rfind(_END_MAGIC, max(tail - 0xFFFF, 0))
    if found < 0 or found > tail:
        raise UnsafeArchive("corrupt archive: no end of central directory")
    return found


def _has_wrapper_shape(directory: _Directory, name: str) -> bool:
    """One entry named ``<uuid><ext>``, the extension being the attachment's own."""
    if directory.count != 1 or directory.first_name is None:
        return False
    match = _WRAPPER_ENTRY.fullmatch(directory.first_name)
    if match is None:
        return False
    _, ext = _split_ext(safe_name(name))
    return (match.group(1) or "").lower() == ext.lower()


def _unwrap(data: bytes, directory: _Directory, name: str, limits: ZipLimits) -> list[File]:
    entries = _unpack(data, directory, limits)
    if not entries:
        raise UnsafeArchive("the archive holds no file")
    if len(entries) == 1:
        # The wrapper's entry name is a UUID; the real name is the AttachmentName.
        return [File(name, entries[0][1], guess_type(name), wrapped=True)]
    return [
        File(safe_name(entry), content, guess_type(entry), wrapped=True)
        for entry, content in entries
    ]


def _unpack(data: bytes, directory: _Directory, limits: ZipLimits) -> list[tuple[str, bytes]]:
    """Every file entry's name and bytes, or UnsafeArchive; nothing partial."""
    if directory.count > limits.max_entries:
        raise UnsafeArchive(
            f"too many entries: {directory.count}, the limit is {limits.max_entries}"
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _CORRUPT as exc:
        raise UnsafeArchive(f"corrupt archive: {exc}") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) != directory.count:
            raise UnsafeArchive("corrupt archive: the central directory changed under us")
        _check_entries(infos, data, directory.start, limits)
        files: list[tuple[str, bytes]] = []
        total = 0
        for info in infos:
            if info.is_dir():
                continue
            content = _read_entry(archive, info, limits, limits.max_total_bytes - total)
            total += len(content)
            files.append((info.filename, content))
    return files


def _check_entries(
    infos: list[zipfile.ZipInfo], data: bytes, cd_start: int, limits: ZipLimits
) -> None:
    """Refuse the archive on anything its central directory shows, before reading data."""
    seen: set[str] = set()
    spans: list[tuple[int, int, str]] = []
    declared_total = 0
    for info in infos:
        # orig_filename: zipfile cuts ``filename`` at the first NUL, hiding the trick.
        entry = info.orig_filename
        label = f"entry {entry!r}"
        problem = _name_problem(entry)
        if problem:
            raise UnsafeArchive(f"{label}: {problem}")
        if info.flag_bits & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
            raise UnsafeArchive(f"{label}: encrypted")
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise UnsafeArchive(f"{label}: a symbolic link")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise UnsafeArchive(f"{label}: a special file (mode {kind:o})")
        key = entry.removesuffix("/")
        if key in seen:
            raise UnsafeArchive(f"{label}: duplicate entry name")
        seen.add(key)
        spans.append((*_data_span(data, info, label), label))
        if info.is_dir():
            continue
        if info.compress_type not in _METHODS:
            raise UnsafeArchive(f"{label}: compression method {info.compress_type} not allowed")
        if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            raise UnsafeArchive(f"{label}: stored entry whose sizes disagree")
        if info.file_size > limits.max_entry_bytes:
            raise UnsafeArchive(
                f"{label}: declares {info.file_size} bytes, over the limit of "
                f"{limits.max_entry_bytes} per entry (a zip bomb?)"
            )
        declared_total += info.file_size
        if declared_total > limits.max_total_bytes:
            raise UnsafeArchive(
                f"entries declare {declared_total} bytes in all, over the limit of "
                f"{limits.max_total_bytes} (a zip bomb?)"
            )
        if _over_ratio(info.file_size, info.compress_size, limits):
            raise UnsafeArchive(f"{label}: compression ratio over {limits.max_ratio} (a zip bomb)")
    spans.sort()
    for (_, end, label), (start, _, other) in itertools.pairwise(spans):
        if start < end:
            # Overlapping entries reuse one compressed kernel many times over.
            raise UnsafeArchive(f"{label} and {other} overlap (a zip bomb trick)")
    if spans and spans[-1][1] > cd_start:
        raise UnsafeArchive(f"{spans[-1][2]}: data runs into the central directory")


def _data_span(data: bytes, info: zipfile.ZipInfo, label: str) -> tuple[int, int]:
    """Where an entry lies in the archive: its local header up to the end of its data."""
    start = info.header_offset
    if start < 0 or data[start : start + 4] != _LOCAL_MAGIC:
        raise UnsafeArchive(f"corrupt archive: {label} has no local header")
    if start + _LOCAL_SIZE > len(data):
        raise UnsafeArchive(f"corrupt archive: {label} is truncated")
    name_len, extra_len = struct.unpack_from("<2H", data, start + 26)
    end = start + _LOCAL_SIZE + name_len + extra_len + info.compress_size
    if end > len(data):
        raise UnsafeArchive(f"corrupt archive: {label} runs past the end of the archive")
    return start, end


def _read_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits, budget: int
) -> bytes:
    """Decompress one entry in chunks, refusing as soon as it outgrows a cap.

    The declared size is only a claim: zipfile happens to stop there today, but the
    caps below hold whatever the stream turns out to contain.
    """
    label = f"entry {info.orig_filename!r}"
    chunks: list[bytes] = []
    produced = 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                produced += len(chunk)
                if produced > limits.max_entry_bytes:
                    raise UnsafeArchive(
                        f"{label}: inflates past {limits.max_entry_bytes} bytes (a zip bomb)"
                    )
                if produced > budget:
                    raise UnsafeArchive(
                        f"entries inflate past {limits.max_total_bytes} bytes in all (a zip bomb)"
                    )
                if _over_ratio(produced, info.compress_size, limits):
                    raise UnsafeArchive(
                        f"{label}: compression ratio over {limits.max_ratio} (a zip bomb)"
                    )
                chunks.append(chunk)
    except _CORRUPT as exc:
        raise UnsafeArchive(f"corrupt archive: {label}: {exc}") from exc
    if produced != info.file_size:
        raise UnsafeArchive(
            f"corrupt archive: {label} declares {info.file_size} bytes but holds {produced}"
        )
    return b"".join(chunks)


def _over_ratio(uncompressed: int, compressed: int, limits: ZipLimits) -> bool:
    return (
        uncompressed > limits.ratio_floor_bytes
        and uncompressed / max(compressed, 1) > limits.max_ratio
    )


def _name_problem(name: str) -> str | None:
    """Why an entry name is unsafe to honour, or None; directory names end in ``/``."""
    if not name:
        return "empty name"
    if any(_is_control(ch) for ch in name):
        return "control character in the name"
    if "\\" in name:
        return "backslash in the name (a Windows path separator)"
    if name.startswith("/"):
        return "absolute path"
    if _DRIVE.match(name):
        return "drive letter in the name"
    parts = name.removesuffix("/").split("/")
    if ".." in parts:
        return "path traversal (..)"
    if "" in parts or "." in parts:
        return "empty or '.' path part"
    return None


# -- names and types ----------------------------------------------------------------

_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_DRIVE = re.compile(r"[A-Za-z]:")
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*]')
_WINDOWS_DEVICE = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])(\..*)?", re.IGNORECASE)
# These reorder how a name is displayed ("gpj.exe" shown as "exe.jpg").
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_MAX_NAME_BYTES = 255  # ext4, NTFS, APFS all stop about here
_MAX_EXT_BYTES = 32

_TYPES: dict[str, str] = {
    **mimetypes.MimeTypes().types_map[True],
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".odp": "application/vnd.oasis.opendocument.presentation",
    ".rtf": "application/rtf",
    ".rar": "application/vnd.rar",
    ".7z": "application/x-7z-compressed",
    ".gz": "application/gzip",
    ".p7s": "application/pkcs7-signature",
}


def _media_type(content_type: str) -> str:
    """``type/subtype`` in lower case, parameters dropped."""
    return content_type.split(";", 1)[0].strip().lower()


def _is_zip_name(name: str) -> bool:
    return name.strip().lower().endswith(".zip")


def _is_control(ch: str) -> bool:
    return ch < " " or "\x7f" <= ch <= "\x9f"


def _split_ext(name: str) -> tuple[str, str]:
    """``("a.tar", ".gz")``; a leading dot is not an extension, nor is a long tail."""
    dot = name.rfind(".")
    if dot <= 0 or len(name[dot:].encode()) > _MAX_EXT_BYTES:
        return name, ""
    return name[:dot], name[dot:]


def _fit(stem: str, suffix: str) -> str:
    """``stem + suffix`` cut to fit the file-name limit, the suffix kept whole."""
    room = _MAX_NAME_BYTES - len(suffix.encode())
    if len(stem.encode()) > room:
        stem = stem.encode()[:room].decode("utf-8", "ignore").rstrip(". ") or "file"
    return stem + suffix


def _create(root: Path, name: str, data: bytes) -> Path:
    """Create ``name`` (or ``name (n)``) in ``root``, exclusively; return its path."""
    stem, ext = _split_ext(name)
    for n in range(1, 10_000):
        path = root / (name if n == 1 else _fit(stem, f" ({n}){ext}"))
        if path.parent != root:  # safe_name leaves no separator; kept as a last guard
            raise ValueError(f"{name!r} would leave {root}")
        try:
            # "x" is O_CREAT|O_EXCL: fails on any existing path, a symlink included.
            out = path.open("xb")
        except FileExistsError:
            continue
        try:
            with out:
                out.write(data)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path
    raise FileExistsError(f"no free name for {name!r} in {root}")
