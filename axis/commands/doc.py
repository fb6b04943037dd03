"""``axis doc``: build, validate, sign and verify documents by hand."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import NoReturn

import click
from lxml import etree

from axis.rejections import Rejection, SchemaInvalid, TooLarge
from schemas import (
    Attachment,
    Business,
    BusinessDocType,
    Edoc,
    Organization,
    Priority,
    Receiver,
    Replacement,
    ResponseFor,
    SignerInfo,
    StaffInfo,
    Status,
    StatusCode,
    SteeringType,
    TraceHeader,
    UpdateInfo,
    files,
    is_group_id,
    is_organ_id,
    parse_edoc,
    parse_receipt,
    parse_rejection,
    parse_status,
    to_bytes,
    validate,
)
from schemas.samples import DOCUMENT_TYPES, VIETNAM
from schemas.xml import DEFAULT_MAX_BYTES, parse

_DATE = click.DateTime(formats=["%Y-%m-%d", "%Y/%m/%d"])


@click.group("doc")
def group() -> None:
    """Build, validate, sign and verify edXML documents."""


def _agency(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not is_organ_id(value):
        raise click.BadParameter(f"{value!r} is not an agency code ([0-9A-Z.], at most 35)")
    return value


def _recipients(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    for code in value:
        if not (is_organ_id(code) or is_group_id(code)):
            raise click.BadParameter(f"{code!r} is neither an agency code nor a @group")
    return value


def _business(
    revoke: str | None, update: str | None, replace: str | None, reason: str | None
) -> Business:
    chosen = [
        (doc_type, target)
        for doc_type, target in (
            (BusinessDocType.REVOKE, revoke),
            (BusinessDocType.UPDATE, update),
            (BusinessDocType.REPLACE, replace),
        )
        if target is not None
    ]
    if len(chosen) > 1:
        raise click.UsageError("--revoke, --update and --replace exclude each other")
    if not chosen:
        if reason is not None:
            raise click.UsageError("--reason goes with --revoke, --update or --replace")
        return Business()
    doc_type, target = chosen[0]
    if doc_type is BusinessDocType.REPLACE:
        return Business(doc_type, reason, replacements=(Replacement(target),))
    return Business(doc_type, reason, target)


def _attachment(index: int, path: Path, *, zipped: bool = False) -> Attachment:
    """``path`` as an attachment: raw, or wrapped in a ZIP as the national SDK does."""
    data = path.read_bytes()
    if zipped:
        return Attachment(f"cid:{index}", "application/zip", path.name, files.wrap(path.name, data))
    return Attachment(f"cid:{index}", files.guess_type(path.name), path.name, data)


def _fail(rejection: Rejection) -> NoReturn:
    click.echo(str(rejection), err=True)
    raise SystemExit(1)


@group.command("new")
@click.option(
    "--from", "sender", required=True, metavar="CODE", callback=_agency, help="The sending agency."
)
@click.option(
    "--to",
    "recipients",
    required=True,
    multiple=True,
    metavar="CODE",
    callback=_recipients,
    help="A recipient or @group (repeatable).",
)
@click.option("--subject", required=True, help="Trích yếu: what the document is about.")
@click.option("--number", required=True, help="The document number, e.g. 101.")
@click.option("--notation", required=True, help="The notation, e.g. VPCP-KSTT.")
@click.option("--date", "promulgated", type=_DATE, help="Promulgation date (default: today).")
@click.option("--type", "doc_type", type=click.IntRange(1, 999), default=1, show_default=True)
@click.option("--type-name", help="Name of the document type (default: from --type).")
@click.option("--due", type=_DATE, help="Due date for handling the document.")
@click.option("--priority", type=click.IntRange(0, 4), default=0, show_default=True)
@click.option("--steering", type=click.IntRange(1, 3), default=1, show_default=True)
@click.option(
    "--attach",
    "attach",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file to attach (repeatable).",
)
@click.option(
    "--zip",
    "zipped",
    is_flag=True,
    help="Wrap each attached file in a ZIP, as the national SDK does (application/zip).",
)
@click.option("--content", help="A summary of the document's content.")
@click.option(
    "--reply-to", "reply_to", multiple=True, metavar="DOCUMENT_ID", help="A document answered."
)
@click.option("--revoke", metavar="DOCUMENT_ID", help="Revoke an earlier document.")
@click.option("--update", metavar="DOCUMENT_ID", help="Update an earlier document.")
@click.option("--replace", metavar="DOCUMENT_ID", help="Replace an earlier document.")
@click.option("--reason", help="Why the earlier document is revoked, updated or replaced.")
@click.option(
    "--update-receiver",
    "update_receivers",
    multiple=True,
    metavar="CODE",
    callback=_recipients,
    help="With --update: a new recipient the update also reaches (repeatable).",
)
@click.option(
    "--document-id",
    metavar="ID",
    help="The DocumentId (default: OrganId,yyyy/MM/dd,number/notation); may be opaque.",
)
@click.option("--from-name", help="OrganName of the sender.")
@click.option("--in-charge", help="OrganizationInCharge of the sender.")
@click.option("--place", help="PromulgationInfo/Place, e.g. Hà Nội.")
@click.option("--type-detail", help="DocumentType/TypeDetail.")
@click.option("--signer", help="SignerInfo/FullName: who signed the paper original.")
@click.option("--position", help="SignerInfo/Position, e.g. Bộ trưởng.")
@click.option("--competence", help="SignerInfo/Competence, e.g. KT. BỘ TRƯỞNG.")
@click.option("--to-place", "to_places", multiple=True, help="ToPlaces/Place (repeatable).")
@click.option("--sphere", help="OtherInfo/SphereOfPromulgation.")
@click.option("--typer-notation", help="OtherInfo/TyperNotation.")
@click.option("--copies", type=click.IntRange(0), help="OtherInfo/PromulgationAmount.")
@click.option("--pages", type=click.IntRange(0), help="OtherInfo/PageAmount.")
@click.option("--paper/--no-paper", default=None, help="Bussiness/Paper: a paper copy follows.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout."
)
def new(
    sender: str,
    recipients: tuple[str, ...],
    subject: str,
    number: str,
    notation: str,
    promulgated: datetime | None,
    doc_type: int,
    type_name: str | None,
    due: datetime | None,
    priority: int,
    steering: int,
    attach: tuple[Path, ...],
    zipped: bool,
    content: str | None,
    reply_to: tuple[str, ...],
    revoke: str | None,
    update: str | None,
    replace: str | None,
    reason: str | None,
    update_receivers: tuple[str, ...],
    document_id: str | None,
    from_name: str | None,
    in_charge: str | None,
    place: str | None,
    type_detail: str | None,
    signer: str | None,
    position: str | None,
    competence: str | None,
    to_places: tuple[str, ...],
    sphere: str | None,
    typer_notation: str | None,
    copies: int | None,
    pages: int | None,
    paper: bool | None,
    output: Path | None,
) -> None:
    """Write a new unsigned edXML document (EDXML.md 1) that satisfies the schema."""
    now = datetime.now(UTC)
    when: date = promulgated.date() if promulgated else now.astimezone(VIETNAM).date()
    known_type = DOCUMENT_TYPES.get(doc_type)
    business = _business(revoke, update, replace, reason)
    if update_receivers:
        if business.doc_type is not BusinessDocType.UPDATE:
            raise click.UsageError("--update-receiver goes with --update")
        receivers = tuple(Receiver(code) for code in update_receivers)
        business = dataclasses.replace(business, update=UpdateInfo(None, True, receivers))
    if paper is not None:
        business = dataclasses.replace(business, paper=paper)
    has_signer = signer or position or competence
    try:
        edoc = Edoc(
            sender=Organization(sender, name=from_name, organization_in_charge=in_charge),
            recipients=tuple(Organization(code) for code in recipients),
            number=number,
            notation=notation,
            promulgation_date=when,
            subject=subject,
            document_type=doc_type,
            type_name=type_name or (known_type[0] if known_type else None),
            content=content,
            due_date=due.date() if due else None,
            steering_type=SteeringType(steering),
            priority=Priority(priority),
            response_for=tuple(ResponseFor.from_document_id(d) for d in reply_to),
            trace=(TraceHeader(sender, now),),
            business=business,
            attachments=tuple(
                _attachment(i, path, zipped=zipped) for i, path in enumerate(attach, 1)
            ),
            document_id=document_id or "",
            place=place,
            type_detail=type_detail,
            signer=SignerInfo(signer, position, competence) if has_signer else None,
            to_places=to_places,
            sphere_of_promulgation=sphere,
            typer_notation=typer_notation,
            promulgation_amount=copies,
            page_amount=pages,
        )
        data = to_bytes(edoc)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _write_checked(data, output, edoc.document_id)


def _write_checked(data: bytes, output: Path | None, document_id: str) -> None:
    """Write ``data`` to ``output`` (stdout by default) once it satisfies the schema."""
    try:
        validate(parse(data))
    except SchemaInvalid as exc:
        _fail(exc)
    if output is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(data)
        click.echo(f"{document_id} -> {output}", err=True)


def _only(codes: Sequence[str], what: str) -> str:
    if len(codes) != 1:
        raise click.UsageError(f"name {what}: the document has {len(codes)} candidates")
    return codes[0]


@group.command("new-status")
@click.argument("document", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--code",
    required=True,
    type=click.Choice([c.value for c in StatusCode]),
    help="01 arrived, 02 refused, 03 accepted, 04 awaiting assignment, 05 being processed, "
    "06 completed, 13 recall requested, 15 recall agreed, 16 recall refused.",
)
@click.option(
    "--from",
    "sender",
    metavar="CODE",
    help="Who sends it: a recipient of DOCUMENT (for 13 its sender, the default then). "
    "Default: the document's only recipient.",
)
@click.option(
    "--to",
    "addressee",
    metavar="CODE",
    help="For 13, the recipient it is for (default: the document's only one); "
    "otherwise always the document's sender.",
)
@click.option("--description", help="What the status says, e.g. Đã hoàn thành.")
@click.option("--department", help="StaffInfo/Department.")
@click.option("--staff", help="StaffInfo/Staff: who handles the document.")
@click.option("--email", help="StaffInfo/Email.")
@click.option("--mobile", help="StaffInfo/Mobile.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: stdout."
)
def new_status(
    document: Path,
    code: str,
    sender: str | None,
    addressee: str | None,
    description: str | None,
    department: str | None,
    staff: str | None,
    email: str | None,
    mobile: str | None,
    output: Path | None,
) -> None:
    """Write an unsigned status (EDXML.md 2) about the received DOCUMENT file.

    ResponseFor carries the document's sender, Code, PromulgationDate and DocumentId.
    """
    edoc = _read_edoc(document)
    status_code = StatusCode(code)
    recipients = [r for r in edoc.recipient_ids if not is_group_id(r)]
    if status_code.from_sender:
        sender = sender or edoc.sender.organ_id
        addressee = addressee or _only(recipients, "the recipient with --to")
    else:
        sender = sender or _only(recipients, "the recipient sending it with --from")
        if addressee not in (None, edoc.sender.organ_id):
            raise click.UsageError(f"status {code} goes to the document's sender")
        addressee = edoc.sender.organ_id
    has_staff = department or staff or email or mobile
    try:
        status = Status.about(
            sender,
            edoc.document_id,
            status_code,
            datetime.now(UTC),
            addressee=addressee,
            description=description,
            staff=StaffInfo(department, staff, mobile, email) if has_staff else None,
            response_for=ResponseFor.of(edoc),
        )
        data = to_bytes(status)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _write_checked(data, output, edoc.document_id)


def _document_id_of(kind: str, root: etree._Element) -> str | None:
    if kind == "edoc":
        return parse_edoc(root, with_attachments=False, check_schema=False).document_id
    if kind == "status":
        return parse_status(root, check_schema=False).document_id
    if kind == "receipt":
        return parse_receipt(root, check_schema=False).document_id
    return parse_rejection(root, check_schema=False).document_id


@group.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--max-bytes", type=click.IntRange(1), default=DEFAULT_MAX_BYTES, show_default=True)
def validate_command(file: Path, max_bytes: int) -> None:
    """Check FILE against the Axis schemas; print its kind and DocumentId.

    Exits 1 with the rejection code (MALFORMED, SCHEMA_INVALID, TOO_LARGE) and
    the reason on stderr.
    """
    try:
        size = file.stat().st_size
        if size > max_bytes:
            raise TooLarge(f"the file is {size} bytes, more than the limit of {max_bytes}")
        root = parse(file.read_bytes(), max_bytes=max_bytes)
        kind = validate(root)
        document_id = _document_id_of(kind, root)
    except Rejection as exc:
        _fail(exc)
    click.echo(f"{kind} {document_id or '-'}")


_MAX_ENTRIES = click.option(
    "--max-entries",
    type=click.IntRange(1),
    default=files.DEFAULT_LIMITS.max_entries,
    show_default=True,
    help="Refuse a ZIP with more entries than this.",
)
_MAX_UNZIPPED = click.option(
    "--max-unzipped",
    type=click.IntRange(1),
    default=files.DEFAULT_LIMITS.max_total_bytes,
    show_default=True,
    help="Refuse a ZIP that would unpack to more bytes than this.",
)


def _files(
    edoc: Edoc, limits: files.ZipLimits = files.DEFAULT_LIMITS
) -> list[tuple[Attachment, list[files.File] | files.UnsafeArchive]]:
    found: list[tuple[Attachment, list[files.File] | files.UnsafeArchive]] = []
    for attachment in edoc.attachments:
        try:
            found.append(
                (
                    attachment,
                    files.files_of(
                        attachment.data,
                        name=attachment.name,
                        content_type=attachment.content_type,
                        limits=limits,
                    ),
                )
            )
        except files.UnsafeArchive as exc:
            found.append((attachment, exc))
    return found


def _read_edoc(file: Path) -> Edoc:
    try:
        return parse_edoc(file.read_bytes())
    except Rejection as exc:
        _fail(exc)


def _limits(max_entries: int, max_unzipped: int) -> files.ZipLimits:
    return files.ZipLimits(
        max_entries=max_entries,
        max_entry_bytes=min(files.DEFAULT_LIMITS.max_entry_bytes, max_unzipped),
        max_total_bytes=max_unzipped,
    )


@group.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_MAX_ENTRIES
@_MAX_UNZIPPED
def show(file: Path, max_entries: int, max_unzipped: int) -> None:
    """Print FILE's header and each attached file: its real name, type, size and SHA-256.

    Looks inside the national SDK's ZIP wrapping; a ZIP that is unsafe to open (a
    bomb, path traversal, too many entries) is named with the reason, never opened.
    """
    edoc = _read_edoc(file)
    click.echo(f"DocumentId  {edoc.document_id}")
    click.echo(f"From        {edoc.sender.organ_id}  {edoc.sender.name or ''}".rstrip())
    for recipient in edoc.recipients:
        click.echo(f"To          {recipient.organ_id}  {recipient.name or ''}".rstrip())
    click.echo(f"Code        {edoc.code}  ({edoc.promulgation_date:%Y/%m/%d})")
    click.echo(f"Subject     {edoc.subject}")
    if edoc.business.doc_type:
        targets = ", ".join(edoc.targets)
        click.echo(f"Action      {edoc.business.doc_type.name.lower()} of {targets}")
    for attachment, found in _files(edoc, _limits(max_entries, max_unzipped)):
        if isinstance(found, files.UnsafeArchive):
            click.echo(f"Attachment  {attachment.name}  REFUSED: {found.reason}")
            continue
        for item in found:
            wrapped = "  (in the SDK's ZIP)" if item.wrapped else ""
            click.echo(
                f"Attachment  {item.name}  {item.content_type}  {item.size} bytes  "
                f"sha256 {item.sha256}{wrapped}"
            )


@group.command("extract")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder to write the attached files into (made if missing).",
)
@_MAX_ENTRIES
@_MAX_UNZIPPED
def extract(file: Path, out: Path, max_entries: int, max_unzipped: int) -> None:
    """Write the files attached to FILE into a folder, unwrapped from the SDK's ZIP.

    Names are made safe (no path parts, never overwriting); exits 1 naming any
    attachment whose ZIP is unsafe, and writes nothing of it.
    """
    edoc = _read_edoc(file)
    refused = False
    for attachment, found in _files(edoc, _limits(max_entries, max_unzipped)):
        if isinstance(found, files.UnsafeArchive):
            click.echo(f"{attachment.name}: refused: {found.reason}", err=True)
            refused = True
            continue
        for path in files.extract(found, out):
            click.echo(str(path))
    if refused:
        raise SystemExit(1)
