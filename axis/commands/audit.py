"""``axis audit``: check the audit trail, and answer auditors' questions from the records.

Times are stored in UTC and shown in Asia/Ho_Chi_Minh unless ``--utc`` is given. Dates
and times given on the command line (``--since``, ``--until``, ``--as-of``) are read
in the same zone, and so are the day, week and month boundaries of ``stats``: a
Vietnamese auditor's "November" is November in Vietnam. A date alone means the start
of that day, except for ``--until``, which includes the whole day.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import click

from axis.audit import query
from axis.audit.chain import EventKind, format_time
from axis.audit.query import LOCAL_ZONE
from axis.audit.verifier import verify_trail
from axis.commands._context import handle_errors, load_config, quiet_logs
from axis.db import make_engine
from signing import Verifier


@click.group("audit")
def group() -> None:
    """Check the tamper-evident audit trail and follow documents through it."""


@group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
@handle_errors
def verify(ctx: click.Context, as_json: bool) -> None:
    """Recompute the whole hash chain and check the hub's signed chain heads.

    Exits 0 when every link and signed head verifies, 1 naming the first broken or
    missing link otherwise.
    """
    from axis.service import trust_store

    config = load_config(ctx)
    quiet_logs(config)
    engine = make_engine(config.database.url, writer=False)
    with engine.connect() as conn:
        result = verify_trail(conn, Verifier(trust_store(config)))
    engine.dispose()
    report = result.report
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": report.ok,
                    "checked": report.checked,
                    "last_seq": report.last_seq,
                    "last_hash": report.last_hash,
                    "signed_heads": report.heads_checked,
                    "seconds": round(result.seconds, 3),
                    "events_per_second": round(result.rate),
                    "broken_seq": report.problem.seq if report.problem else None,
                    "reason": report.problem.reason if report.problem else None,
                }
            )
        )
    elif report.ok:
        click.echo(
            f"audit trail OK: {report.checked} events up to seq {report.last_seq}, "
            f"{report.heads_checked} signed heads verified "
            f"({result.rate:,.0f} events/s); head {report.last_hash}"
        )
    else:
        assert report.problem is not None
        click.echo(
            f"audit trail BROKEN at seq {report.problem.seq}: {report.problem.reason}", err=True
        )
    if not report.ok:
        sys.exit(1)


def _shown(at: datetime, utc: bool) -> str:
    return format_time(at) if utc else at.astimezone(LOCAL_ZONE).isoformat(timespec="microseconds")


def _short(at: datetime, utc: bool) -> str:
    """A time for tables: to the second, in the display zone."""
    local = at.astimezone(UTC if utc else LOCAL_ZONE)
    return local.strftime("%Y-%m-%d %H:%M:%S")


def _zone_name(utc: bool) -> str:
    return "UTC" if utc else "Asia/Ho_Chi_Minh"


def _offset(utc: bool) -> timedelta:
    return timedelta(0) if utc else query.VIETNAM_OFFSET


def _duration(span: timedelta) -> str:
    """``0.412s``, ``3m12s``, ``4h05m``, ``2d07h``: how long a step took, to read at a glance."""
    seconds = span.total_seconds()
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{sign}{seconds:.3f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{sign}{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{sign}{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{sign}{days}d{hours:02d}h"


def parse_moment(text: str, *, utc: bool, end_of_day: bool = False) -> datetime:
    """A command-line date or date and time, read in the display zone, as UTC.

    ``2026-11-20`` is the start of that day (its end with ``end_of_day``);
    ``2026-11-20T08:30`` or ``2026-11-20 08:30:00`` a moment; a time with an offset
    (``...+07:00``, ``...Z``) means what it says.
    """
    text = text.strip()
    zone = UTC if utc else LOCAL_ZONE
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1 if end_of_day else 0), time(), zone)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=zone)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM[:SS])"
        ) from None
    return moment.astimezone(UTC)


def _engine(ctx: click.Context) -> Any:
    config = load_config(ctx)
    quiet_logs(config)
    return make_engine(config.database.url, writer=False)


def _write_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    out = sys.stdout
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


def _json_value(value: Any, utc: bool) -> Any:
    if isinstance(value, datetime):
        return _shown(value, utc)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return round(value.total_seconds(), 6)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json_value(getattr(value, f.name), utc) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _json_value(v, utc) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v, utc) for v in value]
    return value


def _echo_json(value: Any, utc: bool) -> None:
    click.echo(json.dumps(_json_value(value, utc), ensure_ascii=False, indent=2))


@group.command("trail")
@click.argument("document_id")
@click.option(
    "--sender",
    metavar="CODE",
    help="Whose document: a DocumentId is unique per sender (default: the oldest with the id).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the trail as JSON.")
@click.option("--utc", is_flag=True, help="Show times in UTC instead of Asia/Ho_Chi_Minh.")
@click.pass_context
@handle_errors
def trail(
    ctx: click.Context, document_id: str, sender: str | None, as_json: bool, utc: bool
) -> None:
    """Every audit event of DOCUMENT_ID, with how long each step took.

    Received (the hub's time), delivered to each recipient, its statuses (01
    acknowledged ... 06 completed), revokes, updates, replacements and rejections
    naming it. Each step shows the time since the document was received and since
    the step before in the same recipient's thread; a summary per recipient and the
    documents acting on this one (or that it acts on) follow.
    """
    engine = _engine(ctx)
    with engine.connect() as conn:
        found = query.trail(conn, document_id, sender)
    engine.dispose()
    if not found.steps:
        raise click.ClickException(f"no audit event names {document_id}")
    if as_json:
        _echo_json(
            {
                "document_id": document_id,
                "document": found.document,
                "events": [
                    {
                        "seq": s.seq,
                        "at": s.at,
                        "event": s.event,
                        "after_s": s.since_start,
                        "step_s": s.step,
                        "sender": s.sender,
                        "recipient": s.recipient,
                        "code": s.code,
                        "receipt_id": s.receipt_id,
                        "detail": s.detail,
                        "hash": s.hash,
                    }
                    for s in found.steps
                ],
                "recipients": found.recipients,
                "related": found.related,
            },
            utc,
        )
        return
    doc = found.document
    click.echo(document_id)
    if doc is not None:
        due = f", due {doc.due_date.isoformat()}" if doc.due_date else ""
        click.echo(f"  from {doc.sender}: {doc.subject}")
        click.echo(f"  type {doc.doc_type}, priority {doc.priority}{due}, state {doc.state}")
    click.echo(f"  times in {_zone_name(utc)}; +after receipt, (step) since the step before")
    for step in found.steps:
        who = step.sender or ""
        if step.recipient:
            who += f" → {step.recipient}"
        code = f" {step.code}" if step.code else ""
        click.echo(
            f"  #{step.seq:<9} {_shown(step.at, utc)}  +{_duration(step.since_start):>9} "
            f"({_duration(step.step):>9})  {step.event:<11}{code:<4} {who}"
        )
    if found.recipients:
        click.echo("  recipient          delivered  acknowledged(01)  last        completed(06)")
        for r in found.recipients:
            start = found.steps[0].at

            def after(at: datetime | None, start: datetime = start) -> str:
                return f"+{_duration(at - start)}" if at else "-"

            last = f"{r.last_code} {after(r.last_at)}" if r.last_code else "-"
            click.echo(
                f"  {r.recipient:<18} {after(r.delivered_at):>9}  {after(r.acknowledged_at):>16}  "
                f"{last:<11} {after(r.completed_at):>12}"
            )
    for other in found.related:
        kind = {0: "new", 1: "revoke", 2: "update", 3: "replace"}.get(other.business_type, "?")
        relation = "acts on this" if other.acts_on == document_id else "this acts on"
        click.echo(
            f"  {relation}: {other.document_id} ({kind}, {_shown(other.received_at, utc)}, "
            f"state {other.state})"
        )


_SEARCH_COLUMNS = (
    "seq",
    "at",
    "event",
    "code",
    "document_id",
    "sender",
    "recipient",
    "receipt_id",
    "doc_type",
    "priority",
    "subject",
)


@group.command("search")
@click.option("--sender", help="Agency code of the event's sender.")
@click.option("--recipient", help="Agency code the document or status was delivered to.")
@click.option(
    "--event",
    type=click.Choice([k.value for k in EventKind], case_sensitive=False),
    help="The kind of audit event.",
)
@click.option("--status", "status_code", help="Status code (01..06, 13, 15, 16): STATUS events.")
@click.option("--rejection", "rejection_code", help="Rejection code: REJECTED events.")
@click.option("--type", "doc_type", type=int, help="Document type code (1 Công văn, 2 ...).")
@click.option("--priority", type=click.IntRange(0, 4), help="Priority (0 normal ... 4).")
@click.option("--since", help="From this date or time (included).")
@click.option("--until", help="Up to this date (included) or time (excluded).")
@click.option("--text", help="Text the document's subject contains.")
@click.option("--document", "document_id", help="Only the events of this DocumentId.")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--per-page", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the page as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the page as CSV (for spreadsheets).")
@click.option("--utc", is_flag=True, help="Times in UTC instead of Asia/Ho_Chi_Minh.")
@click.pass_context
@handle_errors
def search(
    ctx: click.Context,
    sender: str | None,
    recipient: str | None,
    event: str | None,
    status_code: str | None,
    rejection_code: str | None,
    doc_type: int | None,
    priority: int | None,
    since: str | None,
    until: str | None,
    text: str | None,
    document_id: str | None,
    page: int,
    per_page: int,
    as_json: bool,
    as_csv: bool,
    utc: bool,
) -> None:
    """Audit events matching every filter given, newest first, a page at a time.

    The subject text is a plain substring match checked while walking the events
    newest first: a text that only old documents contain is found faster with a
    date range (--since/--until) or a sender.
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv are exclusive")
    try:
        where = query.SearchFilter(
            sender=sender,
            recipient=recipient,
            event=event.upper() if event else None,
            status_code=status_code,
            rejection_code=rejection_code.upper() if rejection_code else None,
            doc_type=doc_type,
            priority=priority,
            since=parse_moment(since, utc=utc) if since else None,
            until=parse_moment(until, utc=utc, end_of_day=True) if until else None,
            text=text,
            document_id=document_id,
        )
    except query.QueryError as exc:
        raise click.UsageError(str(exc)) from None
    engine = _engine(ctx)
    with engine.connect() as conn:
        found = query.search(conn, where, page=page, per_page=per_page)
    engine.dispose()
    rows = [
        [getattr(hit, name) if name != "at" else _shown(hit.at, utc) for name in _SEARCH_COLUMNS]
        for hit in found.hits
    ]
    if as_csv:
        _write_csv(_SEARCH_COLUMNS, rows)
        return
    if as_json:
        _echo_json(
            {
                "page": found.page,
                "per_page": found.per_page,
                "more": found.more,
                "events": [dict(zip(_SEARCH_COLUMNS, row, strict=True)) for row in rows],
            },
            utc,
        )
        return
    if not found.hits:
        click.echo("no audit event matches" + (" on this page" if page > 1 else ""))
        return
    for hit in found.hits:
        who = hit.sender or ""
        if hit.recipient:
            who += f" → {hit.recipient}"
        code = f" {hit.code}" if hit.code else ""
        subject = f"  {hit.subject}" if hit.subject else ""
        click.echo(
            f"#{hit.seq:<9} {_short(hit.at, utc)}  {hit.event:<11}{code:<4} {who:<33} "
            f"{hit.document_id or '-'}{subject}"
        )
    more = f"; more: --page {page + 1}" if found.more else ""
    click.echo(f"page {page} ({len(found.hits)} events, newest first, {_zone_name(utc)}){more}")


_STATS_COLUMNS = (
    "period",
    "agency",
    "name",
    "sent",
    "received",
    "rejected",
    "acknowledged",
    "median_ack_seconds",
    "with_due_date",
    "completed_on_time",
    "legacy_signed",
)


def _stats_row(report: query.StatsReport, row: query.AgencyStats) -> list[Any]:
    median = None if row.median_ack_seconds is None else round(row.median_ack_seconds, 3)
    return [
        row.period.isoformat(),
        row.agency,
        report.names.get(row.agency, ""),
        row.sent,
        row.received,
        row.rejected,
        row.acknowledged,
        median,
        row.with_due_date,
        row.completed_on_time,
        row.legacy_signed,
    ]


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def totals_sentence(report: query.StatsReport, utc: bool) -> tuple[str, str]:
    """The totals as the government states them, in English and in Vietnamese."""
    zone = UTC if utc else LOCAL_ZONE
    first = report.since or (min(r.period for r in report.rows) if report.rows else None)
    since = (
        report.since.astimezone(zone).date()
        if report.since
        else first
        if isinstance(first, date)
        else None
    )
    since_en = f" since {since.isoformat()}" if since else ""
    since_vi = f" kể từ ngày {since.strftime('%d/%m/%Y')}" if since else ""
    until_en = until_vi = ""
    if report.until:
        last = (report.until.astimezone(zone) - timedelta(microseconds=1)).date()
        until_en = f" until {last.isoformat()}"
        until_vi = f" đến ngày {last.strftime('%d/%m/%Y')}"
    english = (
        f"{report.sent:,} documents sent and {report.received:,} received{since_en}{until_en}; "
        f"{report.rejected:,} rejected; {_percent(report.acknowledged, report.received)} "
        f"acknowledged; {_percent(report.completed_on_time, report.with_due_date)} of those "
        f"with a due date completed on time."
    )
    sent, received = (f"{n:,}".replace(",", ".") for n in (report.sent, report.received))
    vietnamese = (
        f"{since_vi.strip().capitalize() or 'Tổng cộng'}{until_vi}: đã gửi {sent} văn bản, "
        f"nhận {received} văn bản."
    )
    return english, vietnamese


def plot_stats(report: query.StatsReport, path: Path) -> None:
    """A PNG: documents sent and received per period, and per agency (one bar each)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agencies = report.by_agency()
    periods = sorted({r.period for r in report.rows})
    per_period = {p: [0, 0] for p in periods}
    for r in report.rows:
        per_period[r.period][0] += r.sent
        per_period[r.period][1] += r.received
    height = 4 + 0.22 * max(len(agencies), 1)
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(12, height), gridspec_kw={"height_ratios": [4, height - 4]}
    )
    xs = range(len(periods))
    top.bar([x - 0.2 for x in xs], [per_period[p][0] for p in periods], 0.4, label="sent")
    top.bar([x + 0.2 for x in xs], [per_period[p][1] for p in periods], 0.4, label="received")
    step = max(1, len(periods) // 24)
    top.set_xticks(list(xs)[::step], [p.isoformat() for p in periods][::step], rotation=45)
    top.set_title(f"Documents per {report.by}")
    top.legend()
    names = [f"{a.agency} {report.names.get(a.agency, '')}"[:44] for a in agencies]
    ys = range(len(agencies))
    bottom.barh([y - 0.3 for y in ys], [a.sent for a in agencies], 0.3, label="sent")
    bottom.barh([y for y in ys], [a.received for a in agencies], 0.3, label="received")
    bottom.barh(
        [y + 0.3 for y in ys], [a.completed_on_time for a in agencies], 0.3, label="done on time"
    )
    bottom.set_yticks(list(ys), names, fontsize=7)
    bottom.margins(y=0.005)
    bottom.invert_yaxis()
    bottom.set_title("Per agency")
    bottom.legend()
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)


@group.command("stats")
@click.option(
    "--by", type=click.Choice(query.PERIODS), default="month", show_default=True, help="Period."
)
@click.option("--since", help="From this date or time (included).")
@click.option("--until", help="Up to this date (included) or time (excluded).")
@click.option("--json", "as_json", is_flag=True, help="Every agency and period as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Every agency and period as CSV.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also draw a bar chart to this PNG file.",
)
@click.option("--utc", is_flag=True, help="Periods and dates in UTC instead of Asia/Ho_Chi_Minh.")
@click.pass_context
@handle_errors
def stats(
    ctx: click.Context,
    by: query.Period,
    since: str | None,
    until: str | None,
    as_json: bool,
    as_csv: bool,
    plot: Path | None,
    utc: bool,
) -> None:
    """Per agency and period: documents sent, received, rejected, acknowledged, median
    time to acknowledge, and completed before the due date; then the totals.

    A document counts in the period the hub received it: for its sender, and for
    every recipient it was delivered to, with what that recipient did with it.
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv are exclusive")
    try:
        q = query.StatsQuery(
            by=by,
            since=parse_moment(since, utc=utc) if since else None,
            until=parse_moment(until, utc=utc, end_of_day=True) if until else None,
            offset=_offset(utc),
        )
    except query.QueryError as exc:
        raise click.UsageError(str(exc)) from None
    engine = _engine(ctx)
    with engine.connect() as conn:
        report = query.stats(conn, q)
    engine.dispose()
    if plot is not None:
        plot_stats(report, plot)
    english, vietnamese = totals_sentence(report, utc)
    if as_csv:
        _write_csv(_STATS_COLUMNS, (_stats_row(report, r) for r in report.rows))
        return
    if as_json:
        _echo_json(
            {
                "by": by,
                "zone": _zone_name(utc),
                "since": report.since,
                "until": report.until,
                "totals": {
                    "sent": report.sent,
                    "received": report.received,
                    "rejected": report.rejected,
                    "acknowledged": report.acknowledged,
                    "with_due_date": report.with_due_date,
                    "completed_on_time": report.completed_on_time,
                    "legacy_signed": report.legacy_signed,
                    "text": english,
                    "text_vi": vietnamese,
                },
                "rows": [
                    dict(zip(_STATS_COLUMNS, _stats_row(report, r), strict=True))
                    for r in report.rows
                ],
            },
            utc,
        )
        return
    click.echo(english)
    click.echo(vietnamese)
    if not report.rows:
        return
    click.echo("")
    click.echo(f"{by:<10} {'sent':>9} {'received':>9} {'rejected':>8} {'ack 01':>9}")
    per_period: dict[date, list[int]] = {}
    for r in report.rows:
        sums = per_period.setdefault(r.period, [0, 0, 0, 0])
        for i, value in enumerate((r.sent, r.received, r.rejected, r.acknowledged)):
            sums[i] += value
    for period, (sent, received, rejected, acked) in sorted(per_period.items()):
        click.echo(f"{period.isoformat():<10} {sent:>9,} {received:>9,} {rejected:>8,} {acked:>9,}")
    click.echo("")
    click.echo(
        f"{'agency':<16} {'sent':>8} {'received':>9} {'rejected':>8} {'ack 01':>8} "
        f"{'on time':>8}  name"
    )
    for a in report.by_agency():
        on_time = _percent(a.completed_on_time, a.with_due_date)
        click.echo(
            f"{a.agency:<16} {a.sent:>8,} {a.received:>9,} {a.rejected:>8,} "
            f"{_percent(a.acknowledged, a.received):>8} {on_time:>8}  "
            f"{report.names.get(a.agency, '')}"
        )
    legacy = [a for a in report.by_agency() if a.legacy_signed]
    if legacy:
        click.echo(
            f"\n{report.legacy_signed:,} documents signed under the legacy profile "
            "(rsa-sha1, accepted until [signing] legacy_profile_until), by agency:"
        )
        for a in sorted(legacy, key=lambda a: (-a.legacy_signed, a.agency)):
            click.echo(f"{a.agency:<16} {a.legacy_signed:>8,}  {report.names.get(a.agency, '')}")
    if plot is not None:
        click.echo(f"\nchart written to {plot}")


@group.command("overdue")
@click.option("--as-of", "as_of", help="The moment to judge at (default now); a date is its start.")
@click.option(
    "--ack-within",
    type=click.FloatRange(min=0, min_open=True),
    help="Also list deliveries not acknowledged (01) within this many hours.",
)
@click.option("--since", help="Only documents received from this date or time on.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Documents listed per agency in the text output (0: counts only).",
)
@click.option("--json", "as_json", is_flag=True, help="Every agency and late document as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Every late document as CSV.")
@click.option("--utc", is_flag=True, help="Times in UTC instead of Asia/Ho_Chi_Minh.")
@click.pass_context
@handle_errors
def overdue(
    ctx: click.Context,
    as_of: str | None,
    ack_within: float | None,
    since: str | None,
    limit: int,
    as_json: bool,
    as_csv: bool,
    utc: bool,
) -> None:
    """Who is late: documents past their due date without a 06 (completed), and with
    --ack-within, deliveries not acknowledged (01) in time; by responsible agency (the
    recipient), worst first.

    A document revoked, updated or replaced, or refused (02) by the agency, is not late.
    """
    if as_json and as_csv:
        raise click.UsageError("--json and --csv are exclusive")
    moment = parse_moment(as_of, utc=utc) if as_of else datetime.now(UTC)
    within = timedelta(hours=ack_within) if ack_within else None
    start = parse_moment(since, utc=utc) if since else None
    engine = _engine(ctx)
    with engine.connect() as conn:
        late = query.overdue(conn, query.OverdueQuery(moment, within, start))
    engine.dispose()
    columns = (
        "agency",
        "reason",
        "document_id",
        "sender",
        "received_at",
        "due_date",
        "late_by_seconds",
        "last_code",
        "subject",
    )

    def item_row(item: query.OverdueItem) -> list[Any]:
        return [
            item.agency,
            item.reason,
            item.document_id,
            item.sender,
            _shown(item.received_at, utc),
            item.due_date.isoformat() if item.due_date else None,
            round(item.late_by.total_seconds()),
            item.last_code,
            item.subject,
        ]

    if as_csv:
        _write_csv(columns, (item_row(i) for a in late for i in a.items))
        return
    if as_json:
        _echo_json(
            {
                "as_of": moment,
                "ack_within_hours": ack_within,
                "agencies": [
                    {
                        "agency": a.agency,
                        "name": a.name,
                        "past_due": a.past_due,
                        "unacknowledged": a.unacknowledged,
                        "worst_late_by_seconds": round(a.worst.total_seconds()),
                        "items": [dict(zip(columns, item_row(i), strict=True)) for i in a.items],
                    }
                    for a in late
                ],
            },
            utc,
        )
        return
    past_due = sum(a.past_due for a in late)
    unacked = sum(a.unacknowledged for a in late)
    ack_part = f", {unacked:,} not acknowledged within {ack_within:g}h" if within else ""
    click.echo(
        f"As of {_short(moment, utc)} ({_zone_name(utc)}): {past_due:,} past due{ack_part}, "
        f"at {len(late)} agencies"
    )
    for rank, agency in enumerate(late, start=1):
        parts = [f"{agency.past_due:,} past due"]
        if within:
            parts.append(f"{agency.unacknowledged:,} unacknowledged")
        click.echo(
            f"{rank:>3}. {agency.agency} {agency.name or ''} — {', '.join(parts)}; "
            f"worst {_duration(agency.worst)} late"
        )
        for item in agency.items[:limit]:
            due = item.due_date.isoformat() if item.due_date else "-"
            reason = "past due" if item.reason == "past_due" else "no 01"
            click.echo(
                f"       {reason:<8} due {due:<10} late {_duration(item.late_by):>8}  "
                f"last {item.last_code or '--'}  {item.document_id}  {item.subject[:60]}"
            )
        if len(agency.items) > limit > 0:
            click.echo(f"       ... {len(agency.items) - limit} more (--limit, --json, --csv)")


@group.command("seed")
@click.option(
    "--events",
    type=click.IntRange(min=1),
    required=True,
    help="How many audit events of history to make.",
)
@click.option(
    "--years", type=click.FloatRange(min=0, min_open=True), default=3.0, show_default=True
)
@click.option("--seed", "rng_seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option(
    "--agencies",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Agencies CSV (default: the 95 of axis/data/agencies.csv).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_context
@handle_errors
def seed(
    ctx: click.Context,
    events: int,
    years: float,
    rng_seed: int,
    agencies: Path | None,
    as_json: bool,
) -> None:
    """Fill an empty hub database with years of realistic synthetic history.

    For drills and benchmarks: documents between the agencies, deliveries, statuses
    01..06 at each agency's pace (some overdue), rejections, revokes, updates and
    replacements, recorded in a real hash chain that `axis audit verify` checks, the
    final head signed with the hub's key. Refuses a database that already has an
    audit trail.
    """
    from axis import db
    from axis.audit.seed import SeedError, SeedOptions, load_agencies
    from axis.audit.seed import seed as make_history
    from axis.receipts import ReceiptWriter
    from axis.service import hub_signer

    config = load_config(ctx)
    quiet_logs(config)
    writer = ReceiptWriter(hub_signer(config))
    db.upgrade(config.database.url)
    engine = make_engine(config.database.url)
    options = SeedOptions(events=events, years=years, seed=rng_seed)

    def progress(done: int) -> None:
        if not as_json:
            click.echo(f"\r{done:,} / {events:,} events", nl=False, err=True)

    try:
        report = make_history(
            engine, options, load_agencies(agencies), writer=writer, progress=progress
        )
    except SeedError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    if as_json:
        _echo_json(dataclasses.asdict(report) | {"seconds": report.seconds}, False)
        return
    click.echo("", err=True)
    span = ""
    if report.first_at and report.last_at:
        span = f" from {_short(report.first_at, False)} to {_short(report.last_at, False)}"
    click.echo(
        f"seeded {report.events:,} events{span}: {report.documents:,} documents, "
        f"{report.deliveries:,} deliveries, {report.statuses:,} statuses, "
        f"{report.rejections:,} rejections, {report.business:,} revokes/updates/replacements "
        f"in {report.seconds:.0f}s ({report.events / max(report.seconds, 1e-9):,.0f} events/s; "
        f"indexes {report.index_seconds:.0f}s); head {report.last_hash}"
    )
