"""axis.audit.chain: the canonical form of an event, its digest, and how links verify."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from axis.audit.chain import (
    GENESIS,
    Event,
    EventKind,
    canonical_detail,
    chain,
    digest,
    format_time,
    link_digest,
    link_hash,
    verify_links,
)

AT = datetime(2026, 11, 20, 3, 4, 5, 123456, tzinfo=UTC)
DOCUMENT_ID = "000.00.00.G22,2026/11/20,101/VPCP-KSTT"
REASON = "Về việc đẩy mạnh gửi, nhận văn bản điện tử có ký số"


def events() -> list[Event]:
    return [
        Event(
            EventKind.RECEIVED,
            AT,
            "rid-1",
            DOCUMENT_ID,
            "000.00.00.G22",
            detail={"sha256": "ab" * 32, "recipients": ["000.00.00.H41"], "size": 1234},
        ),
        Event(
            EventKind.DELIVERED,
            AT + timedelta(milliseconds=3),
            "rid-1",
            DOCUMENT_ID,
            "000.00.00.G22",
            "000.00.00.H41",
        ),
        Event(
            EventKind.REJECTED,
            AT + timedelta(seconds=1),
            "rid-2",
            None,
            "000.00.00.G01",
            code="SIGNATURE_INVALID",
            detail={"reason": REASON},
        ),
        Event(EventKind.QUARANTINED, AT + timedelta(seconds=2), "rid-3", detail={"type": None}),
    ]


def test_format_time_is_utc_with_microseconds_whatever_the_zone() -> None:
    vietnam = AT.astimezone(timezone(timedelta(hours=7)))
    assert format_time(vietnam) == "2026-11-20T03:04:05.123456Z"
    assert format_time(AT.replace(microsecond=0)) == "2026-11-20T03:04:05.000000Z"


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2026, 11, 20, 3, 4, 5))
    with pytest.raises(ValueError, match="timezone-aware"):
        list(
            chain(
                [Event(EventKind.RECEIVED, datetime(2026, 11, 20))], after_seq=0, after_hash=GENESIS
            )
        )


def test_canonical_detail_sorts_keys_without_spaces_and_keeps_utf8() -> None:
    assert canonical_detail({"b": 1, "a": [1, 2], "lý do": REASON}) == (
        '{"a":[1,2],"b":1,"lý do":"' + REASON + '"}'
    )


def test_digest_is_sha256_of_the_canonical_json_array_of_the_event() -> None:
    detail = canonical_detail({"reason": REASON})
    form = json.dumps(
        [
            5,
            "2026-11-20T03:04:05.123456Z",
            "REJECTED",
            "rid-2",
            None,
            "000.00.00.G01",
            None,
            "SIGNATURE_INVALID",
            detail,
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    expected = hashlib.sha256(form.encode("utf-8")).digest()
    assert (
        digest(5, AT, "REJECTED", "rid-2", None, "000.00.00.G01", None, "SIGNATURE_INVALID", detail)
        == expected
    )


def test_vietnamese_detail_is_hashed_as_utf8_not_as_json_escapes() -> None:
    detail = canonical_detail({"reason": REASON})
    assert "\\u" not in detail and REASON in detail
    form = (
        '[1,"2026-11-20T03:04:05.123456Z","REJECTED",null,null,null,null,null,'
        '"{\\"reason\\":\\"' + REASON + '\\"}"]'
    ).encode("utf-8")
    assert "Về".encode() in form  # the digest covers the UTF-8 bytes of the text itself
    assert digest(1, AT, "REJECTED", None, None, None, None, None, detail) == (
        hashlib.sha256(form).digest()
    )


def test_digests_are_deterministic_and_depend_on_every_field() -> None:
    base = (7, AT, "RECEIVED", "rid", DOCUMENT_ID, "S", "R", "C", "{}")
    assert digest(*base) == digest(*base)
    changed = [
        (8, *base[1:]),
        (base[0], AT + timedelta(microseconds=1), *base[2:]),
        *[(*base[:i], base[i] + "x", *base[i + 1 :]) for i in range(2, 9)],
    ]
    digests = {digest(*fields) for fields in changed}
    assert len(digests) == len(changed)
    assert digest(*base) not in digests


def test_chain_numbers_from_the_head_and_links_each_hash_to_the_one_before() -> None:
    links = list(chain(events(), after_seq=0, after_hash=GENESIS))
    assert [link.seq for link in links] == [1, 2, 3, 4]
    assert [link.kind for link in links] == ["RECEIVED", "DELIVERED", "REJECTED", "QUARANTINED"]
    previous = GENESIS
    for link in links:
        expected = hashlib.sha256(bytes.fromhex(previous) + link_digest(link)).hexdigest()
        assert link.hash == expected == link_hash(previous, link_digest(link))
        previous = link.hash
    assert (
        links[0].detail
        == '{"recipients":["000.00.00.H41"],"sha256":"' + "ab" * 32 + '","size":1234}'
    )


def test_chain_is_deterministic_and_continues_from_any_head() -> None:
    first = list(chain(events(), after_seq=0, after_hash=GENESIS))
    assert first == list(chain(events(), after_seq=0, after_hash=GENESIS))
    tail = list(chain(events()[2:], after_seq=first[1].seq, after_hash=first[1].hash))
    assert tail == first[2:]


def test_verify_links_accepts_a_clean_run_and_returns_its_last_seq_and_hash() -> None:
    links = list(chain(events(), after_seq=0, after_hash=GENESIS))
    assert verify_links(links) == (4, links[-1].hash, None)
    assert verify_links(links[2:], after_seq=2, after_hash=links[1].hash) == (
        4,
        links[-1].hash,
        None,
    )
    assert verify_links([]) == (0, GENESIS, None)


@pytest.mark.parametrize(
    "change",
    [
        {"recipient": "000.00.00.H29"},
        {"at": AT + timedelta(seconds=5)},
        {"kind": "REJECTED"},
        {"detail": '{"sha256":""}'},
        {"code": "X"},
        {"hash": "00" * 32},
    ],
)
def test_verify_links_reports_a_changed_field_or_hash_at_its_seq(change) -> None:
    links = list(chain(events(), after_seq=0, after_hash=GENESIS))
    links[1] = replace(links[1], **change)
    seq, last_hash, problem = verify_links(links)
    assert (seq, last_hash) == (1, links[0].hash)
    assert problem is not None and problem.seq == 2
    assert "recomputed hash differs" in problem.reason


def test_verify_links_reports_a_gap_as_the_missing_seq() -> None:
    links = list(chain(events(), after_seq=0, after_hash=GENESIS))
    _, _, problem = verify_links([links[0], links[2], links[3]])
    assert problem is not None and problem.seq == 2
    assert problem.reason == "missing link: expected seq 2, found 3"


def test_verify_links_reports_a_reordering() -> None:
    links = list(chain(events(), after_seq=0, after_hash=GENESIS))
    _, _, problem = verify_links([links[0], links[2], links[1], links[3]])
    assert problem is not None and problem.seq == 2


def test_verify_links_reports_links_renumbered_to_hide_a_deletion() -> None:
    links = list(chain(events(), after_seq=0, after_hash=GENESIS))
    renumbered = [links[0], replace(links[2], seq=2), replace(links[3], seq=3)]
    _, _, problem = verify_links(renumbered)
    assert problem is not None and problem.seq == 2
    assert "recomputed hash differs" in problem.reason


def test_verify_links_reports_a_run_that_does_not_follow_the_given_head() -> None:
    links = list(chain(events(), after_seq=0, after_hash=GENESIS))
    _, _, problem = verify_links(links[2:], after_seq=2, after_hash=links[0].hash)
    assert problem is not None and problem.seq == 3
