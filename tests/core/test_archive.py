"""axis.archive: append-only segments of bodies, read back by hash, rebuilt by scanning."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from axis.archive import MAGIC, Archive, ArchiveError, Entry, scan, sha256_hex

BODIES = [
    "<edXML>Về việc triển khai Nghị định số 30/2020/NĐ-CP</edXML>".encode(),
    b"",
    b"\n\x00binary\nwith newlines\n",
    bytes(range(256)) * 40,
]


def keyed(bodies: list[bytes]) -> list[tuple[str, bytes]]:
    return [(sha256_hex(body), body) for body in bodies]


def segments(archive: Archive) -> list[Path]:
    return sorted(archive.segments.iterdir())


@pytest.fixture
def archive(tmp_path: Path):
    the_archive = Archive(tmp_path / "archive")
    yield the_archive
    the_archive.close()


def test_append_returns_entries_whose_read_gives_back_each_body(archive) -> None:
    entries = archive.append(keyed(BODIES))
    assert [e.sha256 for e in entries] == [sha256_hex(b) for b in BODIES]
    assert [e.length for e in entries] == [len(b) for b in BODIES]
    assert len({e.segment for e in entries}) == 1
    assert [archive.read(e) for e in entries] == BODIES


def test_records_are_self_describing_so_the_segment_alone_holds_everything(archive) -> None:
    [entry] = archive.append(keyed(BODIES[:1]))
    data = (archive.segments / entry.segment).read_bytes()
    header = MAGIC + f"{entry.sha256} {entry.length}\n".encode()
    assert data == header + BODIES[0] + b"\n"
    assert entry.offset == len(header)


def test_append_of_nothing_writes_nothing(archive) -> None:
    assert archive.append([]) == []
    assert segments(archive) == []


def test_a_corrupted_byte_in_a_segment_fails_the_read(archive) -> None:
    first, second = archive.append(keyed([b"<a>original</a>", b"<b>untouched</b>"]))
    path = archive.segments / first.segment
    data = bytearray(path.read_bytes())
    data[first.offset + 3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match=f"archived body {first.sha256} does not match"):
        archive.read(first)
    assert archive.read(second) == b"<b>untouched</b>"


def test_read_of_a_missing_segment_or_a_short_record_fails(archive) -> None:
    [entry] = archive.append(keyed([b"<a/>"]))
    with pytest.raises(ArchiveError, match=r"segment nowhere\.seg is missing"):
        archive.read(Entry(entry.sha256, "nowhere.seg", entry.offset, entry.length))
    with pytest.raises(ArchiveError, match="does not match its hash"):
        archive.read(Entry(entry.sha256, entry.segment, entry.offset, entry.length + 10))


def test_scan_yields_every_record_with_whether_it_matches_its_hash(archive) -> None:
    entries = archive.append(keyed(BODIES))
    path = archive.segments / entries[0].segment
    data = bytearray(path.read_bytes())
    data[entries[2].offset] ^= 0xFF
    path.write_bytes(bytes(data))
    assert list(scan(path)) == [(e, i != 2) for i, e in enumerate(entries)]


def test_scan_stops_at_a_record_cut_short_by_a_crash(archive) -> None:
    entries = archive.append(keyed(BODIES))
    path = archive.segments / entries[0].segment
    last = entries[-1]
    header_start = last.offset - len(MAGIC + f"{last.sha256} {last.length}\n".encode())
    cuts = {
        "no final newline": last.offset + last.length,
        "inside the body": last.offset + 5,
        "inside the header": last.offset - 10,
        "inside the magic": header_start + 5,
    }
    for where, cut in cuts.items():
        os.truncate(path, cut)
        assert list(scan(path)) == [(e, True) for e in entries[:-1]], where


def test_scan_refuses_a_file_that_is_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "stray.seg"
    path.write_bytes(b"not an archive record\n")
    with pytest.raises(ArchiveError, match=r"stray\.seg: not an archive record at offset 0"):
        list(scan(path))


def test_scan_refuses_a_tail_that_is_no_record_rather_than_take_it_for_a_crash(
    archive,
) -> None:
    [entry] = archive.append(keyed([b"<a/>"]))
    path = archive.segments / entry.segment
    with path.open("ab") as f:
        f.write(b"garbage")
    with pytest.raises(ArchiveError, match=f"not an archive record at offset {entry.offset + 5}"):
        list(scan(path))


def test_a_new_segment_starts_once_the_current_one_is_past_segment_bytes(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive", segment_bytes=300)
    try:
        bodies = [bytes([65 + i]) * 200 for i in range(5)]  # 283-byte records
        entries = archive.append(keyed(bodies[:3]))
        entries += archive.append(keyed(bodies[3:]))
    finally:
        archive.close()
    # A record goes into the current segment while it is below 300 bytes, so two fit.
    names = [e.segment for e in entries]
    assert names[0] == names[1] != names[2] == names[3] != names[4]
    assert len(set(names)) == len(segments(archive)) == 3
    assert [archive.read(e) for e in entries] == bodies
    assert sorted(len(list(scan(path))) for path in segments(archive)) == [1, 2, 2]


def test_small_bodies_share_a_segment_until_it_is_full(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "archive", segment_bytes=1000)
    try:
        entries = archive.append(keyed([bytes([i]) * 100 for i in range(12)]))
    finally:
        archive.close()
    per_segment = [sum(1 for e in entries if e.segment == s.name) for s in segments(archive)]
    assert sum(per_segment) == 12 and len(per_segment) == 2


def test_reopening_writes_a_new_segment_and_old_entries_still_read(tmp_path: Path) -> None:
    first = Archive(tmp_path / "archive")
    old = first.append(keyed(BODIES[:2]))
    first.close()
    second = Archive(tmp_path / "archive")
    try:
        new = second.append(keyed(BODIES[2:]))
        assert new[0].segment != old[0].segment
        assert len(segments(second)) == 2
        assert [second.read(e) for e in old + new] == BODIES
        assert list(scan(second.segments / old[0].segment)) == [(e, True) for e in old]
    finally:
        second.close()


def test_write_returns_the_entries_at_once_and_syncs_them_in_its_own_thread(
    archive, monkeypatch
) -> None:
    synced: list[tuple[int, str]] = []
    real = os.fdatasync

    def recording(fd: int) -> None:
        synced.append((fd, threading.current_thread().name))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", recording)
    entries, done = archive.write(keyed(BODIES))
    # The bytes are in the segment before the sync: only durability is pending.
    assert [archive.read(e) for e in entries] == BODIES
    assert done.result(timeout=10) is None
    [(_, thread)] = synced
    assert thread.startswith("axis-archive-sync")


def test_a_failed_sync_reaches_whoever_waits_for_it_and_its_segment_is_abandoned(
    archive, monkeypatch
) -> None:
    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)
    _, done = archive.write(keyed(BODIES[:1]))
    with pytest.raises(OSError, match="Input/output"):
        done.result(timeout=10)
    first_segment = segments(archive)
    # That segment is abandoned: the next write goes to a new one.
    monkeypatch.undo()
    [entry] = archive.append(keyed(BODIES[1:2]))
    assert [p.name for p in first_segment] != [entry.segment]
    assert len(segments(archive)) == 2 and archive.read(entry) == BODIES[1]


def test_a_segment_filled_during_a_batch_is_synced_before_it_is_closed(
    tmp_path: Path, monkeypatch
) -> None:
    synced: list[int] = []
    real = os.fdatasync

    def recording(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", recording)
    archive = Archive(tmp_path / "archive", segment_bytes=300)
    try:
        entries = archive.append(keyed([bytes([65 + i]) * 200 for i in range(3)]))
    finally:
        archive.close()
    # Two records in the first segment, one in the second: both segments synced.
    inodes = {(archive.segments / e.segment).stat().st_ino for e in entries}
    assert len(inodes) == 2 and inodes <= set(synced)


def test_a_write_cut_short_leaves_its_segment_for_a_new_one(archive, monkeypatch) -> None:
    [first] = archive.append(keyed(BODIES[:1]))
    real = os.write

    def half_then_full_disk(fd: int, data) -> int:
        monkeypatch.setattr(os, "write", real)
        real(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full_disk)
    with pytest.raises(OSError, match="No space"):
        archive.append(keyed(BODIES[2:3]))
    # Retried (the router routes the batch again): into a new segment, readable.
    [again] = archive.append(keyed(BODIES[2:3]))
    assert again.segment != first.segment
    assert archive.read(again) == BODIES[2] and archive.read(first) == BODIES[0]
