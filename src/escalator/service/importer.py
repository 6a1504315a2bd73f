"""`escalator import`: a helpdesk's export of open tickets → `ticket.snapshot` CloudEvents.

Pure: bytes in, validated records and a summary out (the runtime reads the file, produces to
Kafka and draws the progress). Every row is validated by the decoder the worker uses
(`event_from_dict`), so a row the importer accepts is one the worker reads; a refused row is
reported with its line number and the decoder's reason and message, and the rest go through.
Formats and columns: docs/import.md.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from escalator.adapters.cloudevents import event_from_dict, loads
from escalator.domain import engine
from escalator.domain.effects import SlaBreached
from escalator.domain.events import TicketEvent, TicketSnapshot
from escalator.domain.ladder import iso
from escalator.domain.policy import Policy
from escalator.errors import ImportFileError, InvalidEvent

SNAPSHOT: Final = "ticket.snapshot"
FORMATS: Final = ("csv", "jsonl")
EXTENSIONS: Final = {".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}
# CSV columns, in the order docs/import.md lists them. Cells are text; an empty cell is an
# absent field.
COLUMNS: Final = (
    "ticket_id",
    "created_at",
    "customer_id",
    "customer_tier",
    "severity",
    "summary",
    "service",
    "tier",
    "group",
    "assignee",
    "status",
    "status_since",
    "first_reply_at",
    "last_reply_at",
    "reopens",
    "paused_resolution_seconds",
    "paused_next_update_seconds",
    "replace",
)
REQUIRED_COLUMNS: Final = ("ticket_id", "created_at", "customer_id", "customer_tier", "severity")
INTEGER_COLUMNS: Final = frozenset({"reopens"})
PAUSED_COLUMNS: Final = {
    "paused_resolution_seconds": "resolution",
    "paused_next_update_seconds": "next_update",
}
BOOLEANS: Final = {"true": True, "false": False}
# What `surrogateescape` decoding makes of bytes that are not UTF-8.
UNDECODABLE: Final = re.compile("[\udc80-\udcff]")
# How many refused rows the summary lists one by one (the rest are counted).
SHOWN: Final = 50


@dataclass(frozen=True, slots=True)
class Options:
    """How rows become CloudEvents: their `source`, and `as_of`, the instant the export was
    taken (the events' `time`, epoch ms)."""

    source: str
    as_of: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A valid row: the record to produce (key = ticket id) and the event the worker reads."""

    line: int
    key: bytes
    value: bytes
    event: TicketEvent


@dataclass(frozen=True, slots=True)
class Refused:
    """A row that is not produced, with the reason code and message that say why."""

    line: int
    reason: str
    message: str


Outcome = Snapshot | Refused


def detect_format(name: str, override: str | None = None) -> str:
    """The file's format: `override`, else by extension (.csv; .jsonl, .ndjson, .json)."""
    if override is not None:
        return override
    for extension, fmt in EXTENSIONS.items():
        if name.lower().endswith(extension):
            return fmt
    raise ImportFileError(
        f"{name}: cannot tell the format from the extension; use --format ({', '.join(FORMATS)})"
    )


def read(data: bytes, fmt: str, options: Options) -> Iterator[Outcome]:
    """Every row of `data` (in file order) as a Snapshot to produce or a Refused row.

    A ticket id seen on an earlier line is refused (`ticket_exists`): the worker would refuse
    the second one anyway, and the file should say which of the two is meant.
    """
    rows = csv_rows(data) if fmt == "csv" else jsonl_rows(data)
    first_line: dict[str, int] = {}
    taken = iso(options.as_of)
    for line, doc in rows:
        if isinstance(doc, Refused):
            yield doc
            continue
        outcome = _validate(line, doc, options, taken)
        if isinstance(outcome, Snapshot):
            ticket = outcome.event.ticket_id
            if ticket in first_line:
                outcome = Refused(
                    line,
                    "ticket_exists",
                    f"ticket {ticket[:64]!r} is already on line {first_line[ticket]}",
                )
            else:
                first_line[ticket] = line
        yield outcome


def csv_rows(data: bytes) -> Iterator[tuple[int, dict[str, Any] | Refused]]:
    """CSV with a header row of COLUMNS (any order, any subset that has REQUIRED_COLUMNS) →
    (line where the row starts, snapshot data object). A row's number is the line where its
    record starts, so a quoted cell spanning lines does not shift the numbers."""
    # Undecodable bytes become lone surrogates, so one bad row is refused on its own.
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    # Rows are searched for undecodable bytes only when the file has some (it rarely does).
    suspect = UNDECODABLE.search(text) is not None
    header = _header(reader)
    previous = reader.line_num
    while True:
        start = previous + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            previous = reader.line_num
            message = f"not valid CSV: {exc}"
            if "end of data" in str(exc):
                message += (
                    " (a quote opened on this line is never closed: no row after it was read)"
                )
            yield start, Refused(start, "malformed_csv", message)
            continue
        previous = reader.line_num
        if not cells:
            continue
        if suspect and any(UNDECODABLE.search(cell) for cell in cells):
            yield start, Refused(start, "not_utf8", "the row is not valid UTF-8")
            continue
        if len(cells) > len(header):
            yield (
                start,
                Refused(
                    start,
                    "invalid_field",
                    f"the row has {len(cells)} cells, the header {len(header)} columns",
                ),
            )
            continue
        yield start, _csv_data(dict(zip(header, cells, strict=False)))


def _header(reader: Any) -> list[str]:
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise ImportFileError("the CSV file is empty: a header row is required") from None
    except csv.Error as exc:
        raise ImportFileError(f"line 1: the header is not valid CSV: {exc}") from None
    # A column without a name (the trailing comma spreadsheets write) is ignored.
    unknown = [name for name in header if name and name not in COLUMNS]
    if unknown:
        raise ImportFileError(
            f"line 1: unknown column(s) {', '.join(repr(n[:32]) for n in unknown)}; "
            f"allowed: {', '.join(COLUMNS)}"
        )
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        raise ImportFileError(f"line 1: column(s) {', '.join(repeated)} appear twice")
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise ImportFileError(f"line 1: required column(s) missing: {', '.join(missing)}")
    return header


def _csv_data(row: dict[str, str]) -> dict[str, Any]:
    """CSV cells → the snapshot's `data` object. Numbers and booleans are converted when
    they are well formed; anything else is passed on as text, for the decoder to refuse with
    its own message naming the field."""
    data: dict[str, Any] = {}
    paused: dict[str, Any] = {}
    for column, cell in row.items():
        if cell == "" or not column:
            continue
        if column in INTEGER_COLUMNS or column in PAUSED_COLUMNS:
            value: Any = _integer(cell)
            if column in PAUSED_COLUMNS:
                paused[PAUSED_COLUMNS[column]] = value
                continue
        elif column == "replace":
            value = BOOLEANS.get(cell.strip().lower(), cell)
        else:
            value = cell
        data[column] = value
    if paused:
        data["paused_seconds"] = paused
    return data


def _integer(cell: str) -> int | str:
    text = cell.strip()
    return int(text) if text.lstrip("-").isdigit() and len(text) <= 18 else cell


def jsonl_rows(data: bytes) -> Iterator[tuple[int, dict[str, Any] | Refused]]:
    """JSON lines → (line number, object). Blank lines are skipped (not rows); a UTF-8 byte
    order mark (some Windows tools write one) is not part of the first line."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            yield number, loads(raw)
        except InvalidEvent as exc:
            yield number, Refused(number, exc.reason, exc.message)


def _validate(line: int, doc: dict[str, Any], options: Options, taken: str) -> Outcome:
    """One row (a snapshot's `data` with `ticket_id`, or a whole CloudEvent) → Outcome;
    `taken` is `options.as_of` in RFC 3339."""
    if "specversion" in doc:
        # A whole CloudEvent is taken as it is: its producer chose id, source and time.
        if doc.get("type") != SNAPSHOT:
            return Refused(
                line,
                "invalid_field",
                f"type {str(doc.get('type'))[:64]!r}: escalator import sends {SNAPSHOT} only",
            )
        cloudevent = doc
    else:
        ticket = doc.get("ticket_id")
        if ticket is None:
            return Refused(line, "missing_field", "ticket_id is required")
        if not isinstance(ticket, str) or not ticket:
            return Refused(
                line, "invalid_field", "ticket_id must be a non-empty string (quote numeric ids)"
            )
        cloudevent = {
            "specversion": "1.0",
            "id": "import",  # set below from the decoded created_at: one parse per row
            "source": options.source,
            "type": SNAPSHOT,
            "time": taken,
            "subject": ticket,
            "datacontenttype": "application/json",
            "data": doc,
        }
    try:
        event = event_from_dict(cloudevent, options.as_of)
    except InvalidEvent as exc:
        return Refused(line, exc.reason, exc.message)
    if cloudevent is not doc:
        assert isinstance(event.payload, TicketSnapshot)  # the type was set above
        snapshot = event.payload
        cloudevent["id"] = snapshot_id(
            event.ticket_id, snapshot.created_at, options.as_of if snapshot.replace else None
        )
        event = dataclasses.replace(event, id=cloudevent["id"])
    return Snapshot(line, event.ticket_id.encode(), orjson.dumps(cloudevent), event)


def snapshot_id(ticket: str, created_at: int, replacing_as_of: int | None = None) -> str:
    """The event id of a ticket's import: the same on every run of the same export (so a
    re-run is refused as `duplicate_event`, and a consumer that deduplicates by id sees
    repeats), whatever offset the export wrote `created_at` with. A row that replaces the
    ticket (`replace`) names the export's time too: each new export replaces the state, while
    the same record delivered twice is still a duplicate."""
    base = f"import:{ticket}:{iso(created_at)}"
    return base if replacing_as_of is None else f"{base}:{iso(replacing_as_of)}"


def overdue(event: TicketEvent, policy: Policy) -> bool:
    """Whether importing `event` as a new ticket records a breach already past (an imported
    breach, `sla.breached` with `imported: true`). Raises InvalidEvent when the engine refuses
    the snapshot under `policy`."""
    decision = engine.apply(None, event, policy)
    return any(
        isinstance(effect, SlaBreached) and getattr(effect, "imported", False)
        for effect in decision.effects
    )


@dataclass(frozen=True, slots=True)
class Summary:
    """What an import did. `unchecked` are produced rows the engine refused under the local
    policy when counting overdue ones (the worker decides with its own policy and state)."""

    rows: int
    imported: int
    overdue: int
    refused: tuple[Refused, ...]
    unchecked: tuple[Refused, ...]
    dry_run: bool = False

    def lines(self, shown: int = SHOWN) -> list[str]:
        """The summary as printed: counts, then each refused row by line (at most `shown`)."""
        verb = "valid (dry run: nothing sent)" if self.dry_run else "imported"
        out = [
            f"rows read: {self.rows}",
            f"{verb}: {self.imported}",
            f"overdue: {self.overdue} (a target already past at import)",
            f"refused: {len(self.refused)}",
        ]
        out += _listed(self.refused, shown)
        if self.unchecked:
            out.append(
                f"overdue not known: {len(self.unchecked)} (the engine refused them under this "
                "policy)"
            )
            out += _listed(self.unchecked, shown)
        return out


def _listed(rows: tuple[Refused, ...], shown: int) -> list[str]:
    out = [f"  line {r.line}: {r.reason}: {r.message}" for r in rows[:shown]]
    if len(rows) > shown:
        out.append(f"  … and {len(rows) - shown} more")
    return out


@dataclass(slots=True)
class Tally:
    """The running counts of one pass over a file (mutable: rows stream through once, and
    the importer produces them as it counts). `summary()` freezes it."""

    policy: Policy
    rows: int = 0
    imported: int = 0
    overdue: int = 0
    refused: list[Refused] = field(default_factory=list)
    unchecked: list[Refused] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.rows += 1
        if isinstance(outcome, Refused):
            self.refused.append(outcome)
            return
        self.imported += 1
        try:
            self.overdue += overdue(outcome.event, self.policy)
        except InvalidEvent as exc:
            self.unchecked.append(Refused(outcome.line, exc.reason, exc.message))

    def summary(self, dry_run: bool = False) -> Summary:
        return Summary(
            self.rows,
            self.imported,
            self.overdue,
            tuple(self.refused),
            tuple(self.unchecked),
            dry_run,
        )


def summarise(outcomes: Iterable[Outcome], policy: Policy, dry_run: bool = True) -> Summary:
    """The summary of a whole file without producing anything (`--dry-run`, tests)."""
    tally = Tally(policy)
    for outcome in outcomes:
        tally.add(outcome)
    return tally.summary(dry_run)
