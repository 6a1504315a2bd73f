"""`escalator import`'s pure part: CSV and JSON lines → validated snapshots; bad rows refused
by line with the decoder's reason, the rest kept; the summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from escalator.adapters.cloudevents import event_from_dict
from escalator.domain.events import TicketSnapshot
from escalator.errors import ImportFileError
from escalator.service import importer
from escalator.service.importer import Options, Refused, Snapshot
from tests.helpers import example_policy, ms

AS_OF = ms("2026-11-24T12:00:00Z")
OPTIONS = Options("zendesk/acme", AS_OF)
HEADER = "ticket_id,created_at,customer_id,customer_tier,severity,summary,status"


def read(text: str | bytes, fmt: str = "csv") -> list[Snapshot | Refused]:
    data = text.encode() if isinstance(text, str) else text
    return list(importer.read(data, fmt, OPTIONS))


def refused(outcomes: list[Snapshot | Refused]) -> list[tuple[int, str, str]]:
    return [(o.line, o.reason, o.message) for o in outcomes if isinstance(o, Refused)]


def kept(outcomes: list[Snapshot | Refused]) -> list[tuple[int, str]]:
    return [(o.line, o.event.ticket_id) for o in outcomes if isinstance(o, Snapshot)]


def test_a_csv_row_becomes_the_snapshot_the_worker_reads() -> None:
    (row,) = read(
        "ticket_id,created_at,customer_id,customer_tier,severity,summary,service,tier,group,"
        "assignee,status,status_since,first_reply_at,last_reply_at,reopens,"
        "paused_resolution_seconds,paused_next_update_seconds,replace\n"
        'T-1,2026-11-24T09:00:00Z,globex,enterprise,P2,"Checkout, down",checkout,L2,payments,'
        "ana,pending,2026-11-24T11:00:00Z,2026-11-24T09:10:00Z,2026-11-24T10:30:00Z,2,600,0,"
        "TRUE\n"
    )
    assert isinstance(row, Snapshot)
    assert row.line == 2
    assert row.key == b"T-1"
    doc = orjson.loads(row.value)
    assert {k: doc[k] for k in ("specversion", "type", "source", "subject", "time")} == {
        "specversion": "1.0",
        "type": "ticket.snapshot",
        "source": "zendesk/acme",
        "subject": "T-1",
        "time": "2026-11-24T12:00:00.000Z",
    }
    # replace: the id names the export's time too (a new export replaces, a redelivery does not)
    assert doc["id"] == "import:T-1:2026-11-24T09:00:00.000Z:2026-11-24T12:00:00.000Z"
    # What is produced decodes, as the worker decodes it, to the row's values.
    assert (
        event_from_dict(doc).payload
        == row.event.payload
        == TicketSnapshot(
            created_at=ms("2026-11-24T09:00:00Z"),
            customer_id="globex",
            customer_tier="enterprise",
            severity="P2",
            summary="Checkout, down",
            service="checkout",
            tier="L2",
            group="payments",
            assignee="ana",
            status="pending",
            status_since=ms("2026-11-24T11:00:00Z"),
            first_reply_at=ms("2026-11-24T09:10:00Z"),
            last_reply_at=ms("2026-11-24T10:30:00Z"),
            reopens=2,
            paused_seconds={"resolution": 600, "next_update": 0},
            replace=True,
        )
    )


def test_bad_csv_rows_are_refused_by_line_and_the_rest_kept() -> None:
    outcomes = read(
        "\ufeff"  # the byte order mark spreadsheet programs write
        f"{HEADER}\n"
        "T-1,2026-11-24T09:00:00Z,globex,enterprise,P1,ok,open\n"
        "T-2,2026-11-24T09:00:00Z,globex,enterprise,P9,bad severity,open\n"
        'T-3,2026-11-24T09:00:00Z,acme,business,P2,"two\nlines",open\n'
        "\n"
        "T-4,2026-11-24T09:00:00Z,acme,business,P3,solved,solved\n"
        "T-5,2026-11-24T13:00:00Z,acme,business,P3,created after the export,open\n"
        ",2026-11-24T09:00:00Z,acme,business,P3,no id,open\n"
        "T-6,2026-11-24T09:00:00Z,acme,business,P3,too,many,cells\n"
        "T-1,2026-11-24T09:00:00Z,globex,enterprise,P1,again,open\n"
        "T-7,2026-11-24T09:00:00Z,acme,business,P4\n"
    )
    assert kept(outcomes) == [(2, "T-1"), (4, "T-3"), (12, "T-7")]
    assert refused(outcomes) == [
        (3, "invalid_field", "data.severity 'P9' is not one of: P1, P2, P3, P4"),
        (
            7,
            "invalid_field",
            "data.status 'solved': only open tickets are imported (new, open, pending, on_hold)",
        ),
        (8, "invalid_field", "data.created_at is after the snapshot's time (when it was taken)"),
        (9, "missing_field", "ticket_id is required"),
        (10, "invalid_field", "the row has 8 cells, the header 7 columns"),
        (11, "ticket_exists", "ticket 'T-1' is already on line 2"),
    ]
    assert len(outcomes) == 9


def test_csv_numbers_and_flags_that_are_not_well_formed_are_refused_naming_the_field() -> None:
    header = "ticket_id,created_at,customer_id,customer_tier,severity"
    outcomes = read(
        f"{header},reopens,paused_next_update_seconds,replace\n"
        "A,2026-11-24T09:00:00Z,c,standard,P3,two,,\n"
        "B,2026-11-24T09:00:00Z,c,standard,P3,-1,,\n"
        "C,2026-11-24T09:00:00Z,c,standard,P3,,1h,\n"
        "D,2026-11-24T09:00:00Z,c,standard,P3,,,yes\n"
        "E,2026-11-24T09:00:00Z,c,standard,P3, 3 ,60,false\n"
    )
    assert refused(outcomes) == [
        (2, "invalid_field", "data.reopens must be a non-negative integer"),
        (3, "invalid_field", "data.reopens must be a non-negative integer"),
        (4, "invalid_field", "data.paused_seconds.next_update must be a non-negative integer"),
        (5, "invalid_field", "data.replace must be true or false"),
    ]
    (last,) = [o for o in outcomes if isinstance(o, Snapshot)]
    assert isinstance(last.event.payload, TicketSnapshot)
    assert (last.event.payload.reopens, last.event.payload.paused_seconds) == (
        3,
        {"next_update": 60},
    )


def test_a_row_that_is_not_utf8_is_refused_alone() -> None:
    data = (
        f"{HEADER}\n".encode()
        + b"T-1,2026-11-24T09:00:00Z,globex,enterprise,P1,caf\xe9,open\n"
        + b"T-2,2026-11-24T09:00:00Z,globex,enterprise,P1,caf\xc3\xa9,open\n"
    )
    outcomes = read(data)
    assert refused(outcomes) == [(2, "not_utf8", "the row is not valid UTF-8")]
    assert kept(outcomes) == [(3, "T-2")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the CSV file is empty: a header row is required"),
        (
            "ticket_id,created_at,customer_id,customer_tier,severity,priority\n",
            "line 1: unknown column(s) 'priority'; allowed: ticket_id, created_at",
        ),
        (
            "ticket_id,created_at,customer_id,severity\n",
            "line 1: required column(s) missing: customer_tier",
        ),
        (
            "ticket_id,created_at,customer_id,customer_tier,severity,tier,tier\n",
            "line 1: column(s) tier appear twice",
        ),
    ],
)
def test_a_header_that_cannot_be_read_stops_the_import(text: str, message: str) -> None:
    with pytest.raises(ImportFileError) as failed:
        read(text)
    assert message in str(failed.value)


def test_jsonl_takes_data_objects_and_whole_cloudevents() -> None:
    data = {
        "ticket_id": "T-1",
        "created_at": "2026-11-24T10:00:00+01:00",
        "customer_id": "globex",
        "customer_tier": "enterprise",
        "severity": "P1",
        "paused_seconds": {"resolution": 60},
    }
    whole = {
        "specversion": "1.0",
        "id": "zd-export-7",
        "source": "zendesk/acme",
        "type": "ticket.snapshot",
        "time": "2026-11-24T11:00:00Z",
        "subject": "T-2",
        "data": {**data, "ticket_id": "T-2"},
    }
    lines = [
        orjson.dumps(data),
        b"",
        b"{not json",
        orjson.dumps(whole),
        orjson.dumps({**whole, "type": "ticket.created", "subject": "T-3"}),
        orjson.dumps({**data, "ticket_id": 35436}),
        b"[1, 2]",
        orjson.dumps({**data, "ticket_id": "T-4", "status": "closed"}),
    ]
    outcomes = read(b"\n".join(lines) + b"\n", "jsonl")
    assert kept(outcomes) == [(1, "T-1"), (4, "T-2")]
    first, second = (o for o in outcomes if isinstance(o, Snapshot))
    # Offsets do not change the id: the same instant is the same import.
    assert orjson.loads(first.value)["id"] == "import:T-1:2026-11-24T09:00:00.000Z"
    # A whole CloudEvent is sent as it is.
    assert orjson.loads(second.value) == whole
    assert [(line, reason) for line, reason, _ in refused(outcomes)] == [
        (3, "malformed_json"),
        (5, "invalid_field"),
        (6, "invalid_field"),
        (7, "not_an_object"),
        (8, "invalid_field"),
    ]
    assert "escalator import sends ticket.snapshot only" in refused(outcomes)[1][2]
    assert "quote numeric ids" in refused(outcomes)[2][2]


def test_ids_are_the_same_on_every_run_and_time_is_the_export() -> None:
    text = f"{HEADER}\nT-1,2026-11-24T09:00:00Z,globex,enterprise,P1,x,open\n"
    first = read(text)
    later = list(importer.read(text.encode(), "csv", Options("other", AS_OF + 60_000)))
    assert isinstance(first[0], Snapshot)
    assert isinstance(later[0], Snapshot)
    assert first[0].event.id == later[0].event.id
    assert (first[0].event.time, later[0].event.time) == (AS_OF, AS_OF + 60_000)


@pytest.mark.parametrize(
    ("name", "override", "fmt"),
    [
        ("tickets.csv", None, "csv"),
        ("TICKETS.CSV", None, "csv"),
        ("open.jsonl", None, "jsonl"),
        ("open.json", None, "jsonl"),
        ("open.ndjson", None, "jsonl"),
        ("open.txt", "csv", "csv"),
        ("open.csv", "jsonl", "jsonl"),
    ],
)
def test_the_format_comes_from_the_extension_unless_given(
    name: str, override: str | None, fmt: str
) -> None:
    assert importer.detect_format(name, override) == fmt


def test_an_unknown_extension_needs_format() -> None:
    with pytest.raises(ImportFileError, match="use --format"):
        importer.detect_format("open.txt")


def test_the_summary_lists_refused_rows_by_line_up_to_a_cap() -> None:
    rows = "".join(f"T-{n},2026-11-24T09:00:00Z,c,standard,P9,x,open\n" for n in range(60))
    # Created a minute before the export: no target can be past yet.
    rows += "T-ok,2026-11-24T11:59:00Z,c,standard,P4,x,open\n"
    summary = importer.summarise(
        importer.read(f"{HEADER}\n{rows}".encode(), "csv", OPTIONS), example_policy()
    )
    lines = summary.lines()
    assert lines[:4] == [
        "rows read: 61",
        "valid (dry run: nothing sent): 1",
        "overdue: 0 (a target already past at import)",
        "refused: 60",
    ]
    assert lines[4] == "  line 2: invalid_field: data.severity 'P9' is not one of: P1, P2, P3, P4"
    assert lines[53] == "  line 51: invalid_field: data.severity 'P9' is not one of: P1, P2, P3, P4"
    assert lines[54] == "  … and 10 more"
    assert [r.line for r in summary.refused] == list(range(2, 62))
    assert summary.imported == 1


def test_overdue_counts_imported_tickets_with_a_target_already_past() -> None:
    # The example policy gives enterprise P1 a 15-minute first response on 24x7: unanswered
    # since 09:00, it is long past at 12:00; a ticket created at 11:59 is not.
    text = (
        f"{HEADER}\n"
        "T-old,2026-11-24T09:00:00Z,globex,enterprise,P1,x,open\n"
        "T-new,2026-11-24T11:59:00Z,globex,enterprise,P1,x,open\n"
    )
    summary = importer.summarise(importer.read(text.encode(), "csv", OPTIONS), example_policy())
    assert summary.unchecked == ()
    assert summary.overdue == 1


def test_the_command_reports_bad_rows_and_exits_1(tmp_path: Path) -> None:
    export = tmp_path / "open.csv"
    export.write_text(
        f"{HEADER}\n"
        "T-1,2026-11-24T11:59:00Z,globex,enterprise,P1,ok,open\n"
        "T-2,2026-11-24T11:59:00Z,globex,enterprise,P1,bad,resolved\n"
    )
    escalator = str(Path(sys.executable).parent / "escalator")
    done = subprocess.run(
        [escalator, "import", "--dry-run", "--as-of", "2026-11-24T12:00:00Z", str(export)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    out = done.stdout.splitlines()
    assert out[:4] == [
        "rows read: 2",
        "valid (dry run: nothing sent): 1",
        "overdue: 0 (a target already past at import)",
        "refused: 1",
    ]
    assert out[4].startswith("  line 3: invalid_field: data.status 'resolved' is not one of")
    bad = tmp_path / "open.txt"
    bad.write_text("x")
    failed = subprocess.run(
        [escalator, "import", "--dry-run", str(bad)], capture_output=True, text=True, check=False
    )
    assert failed.returncode == 2
    assert "cannot tell the format from the extension; use --format" in failed.stderr


def test_spreadsheet_quirks_a_byte_order_mark_and_a_trailing_empty_column() -> None:
    line = (
        '{"ticket_id":"A","created_at":"2026-11-24T10:00:00Z","customer_id":"c",'
        '"customer_tier":"enterprise","severity":"P1"}\n'
    )
    (row,) = importer.read(b"\xef\xbb\xbf" + line.encode(), "jsonl", OPTIONS)
    assert isinstance(row, Snapshot)
    text = f"{HEADER},\nT-1,2026-11-24T11:59:00Z,globex,enterprise,P1,x,open,\n"
    (row,) = importer.read(text.encode(), "csv", OPTIONS)
    assert isinstance(row, Snapshot)


def test_an_unclosed_quote_says_the_rest_of_the_file_was_not_read() -> None:
    text = f'{HEADER}\nT-1,2026-11-24T11:59:00Z,globex,enterprise,P1,"oops,open\nT-2,x\n'
    (refused,) = importer.read(text.encode(), "csv", OPTIONS)
    assert refused.reason == "malformed_csv"
    assert "no row after it was read" in refused.message


def test_an_open_ticket_older_than_ten_years_is_refused() -> None:
    text = f"{HEADER}\nT-1,2001-01-01T00:00:00Z,globex,enterprise,P1,x,open\n"
    (refused,) = importer.read(text.encode(), "csv", OPTIONS)
    assert refused.reason == "invalid_field"
    assert "more than 10 years before" in refused.message
