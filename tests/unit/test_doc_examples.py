"""docs/events.md shows full outputs with their trace and context; each one there must be,
field for field, what escalator emits for the input the doc gives (issue 17)."""

from __future__ import annotations

import re

import orjson

from escalator.service import simulate
from tests.helpers import ROOT, example_policy, ms
from tests.unit.test_schemas import OUTBOUND

EVENTS_DOC = ROOT / "docs" / "events.md"
INPUT = re.compile(r"<!-- example-input until=(\S+) -->\n```jsonl\n(.*?)\n```", re.S)
OUTPUT = re.compile(r"<!-- example-output -->\n```json\n(.*?)\n```", re.S)


def test_every_full_example_is_what_escalator_emits() -> None:
    text = EVENTS_DOC.read_text()
    ((until, lines),) = INPUT.findall(text)
    examples = [orjson.loads(block) for block in OUTPUT.findall(text)]
    result = simulate.run(lines.encode().splitlines(), example_policy(), ms(until))
    emitted = {d["id"]: d for d in (orjson.loads(e.value) for e in result.emissions)}
    kinds = {(d["type"], "incident_id" in d["data"]) for d in examples}
    # Each output people read, about a ticket and about an incident.
    assert kinds == {
        ("sla.warning", False),
        ("sla.breached", False),
        ("escalation.raised", False),
        ("notification.requested", False),
        ("escalation.raised", True),
        ("notification.requested", True),
    }
    for example in examples:
        assert example == emitted[example["id"]], example["id"]
        OUTBOUND.validate(example)
        assert "trace" in example["data"]
        assert "context" in example["data"]
