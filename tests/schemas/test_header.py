"""schemas.header: the router's fast read of an edoc's routing facts."""

from __future__ import annotations

import random
from datetime import date

import schemas
from schemas.samples import sample_edoc
from schemas.xml import parse


def _root(edoc: schemas.Edoc):
    root = parse(schemas.to_bytes(edoc))
    assert schemas.validate(root) == "edoc"
    return root


def test_header_agrees_with_the_full_parse() -> None:
    edoc = sample_edoc(
        "000.00.00.G22",
        ["000.00.00.H41", "@provinces"],
        rng=random.Random(3),
        due_date=date(2026, 12, 1),
        priority=2,
        size=4000,
    )
    header = schemas.read_header(_root(edoc))
    full = schemas.parse_edoc(schemas.to_bytes(edoc))
    assert header.document_id == full.document_id
    assert header.sender == full.sender.organ_id
    assert header.recipients == ("000.00.00.H41", "@provinces")
    assert header.subject == full.subject
    assert (header.document_type, header.priority, header.steering_type) == (
        full.document_type,
        int(full.priority),
        int(full.steering_type),
    )
    assert header.due_date == date(2026, 12, 1)
    assert (header.business_type, header.targets) == (0, ())


def test_header_reads_a_revoke_and_what_it_acts_on() -> None:
    original = sample_edoc("000.00.00.G01", ["000.00.00.G02"], rng=random.Random(1))
    revoke = sample_edoc(
        "000.00.00.G01",
        ["000.00.00.G02"],
        rng=random.Random(2),
        business=schemas.Business(
            schemas.BusinessDocType.REVOKE, "Ban hành nhầm", original.document_id
        ),
    )
    header = schemas.read_header(_root(revoke))
    assert (header.business_type, header.business_reason, header.targets) == (
        1,
        "Ban hành nhầm",
        (original.document_id,),
    )


def test_header_reads_an_update_reaching_new_receivers_and_a_replacement() -> None:
    original = "000.00.00.G01,2026/11/20,7/BCA-VP"
    update = sample_edoc(
        "000.00.00.G01",
        ["000.00.00.G02"],
        rng=random.Random(3),
        business=schemas.Business(
            schemas.BusinessDocType.UPDATE,
            "Bổ sung nơi nhận",
            original,
            update=schemas.UpdateInfo(False, True, [schemas.Receiver("000.00.00.H41")]),
        ),
    )
    header = schemas.read_header(_root(update))
    assert (header.targets, header.new_receivers) == ((original,), ("000.00.00.H41",))
    replace = sample_edoc(
        "000.00.00.G01",
        ["000.00.00.G02"],
        rng=random.Random(4),
        business=schemas.Business(
            schemas.BusinessDocType.REPLACE,
            "Thay thế",
            replacements=[
                schemas.Replacement(original, ["000.00.00.G02"]),
                schemas.Replacement("u-2"),
            ],
        ),
    )
    header = schemas.read_header(_root(replace))
    assert header.targets == (original, "u-2")
    assert header.replaced_for == ((original, ("000.00.00.G02",)), ("u-2", ()))


def test_a_processing_instruction_inside_the_subject_does_not_hide_its_text() -> None:
    edoc = sample_edoc("000.00.00.G01", ["000.00.00.G02"], subject="Về việc phòng chống lụt bão")
    body = schemas.to_bytes(edoc).replace("phòng chống".encode(), "phòng<?x y?> chống".encode())
    assert schemas.read_header(parse(body)).subject == "Về việc phòng chống lụt bão"
