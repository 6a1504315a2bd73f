"""The ticket doors after their hostile review: each test is a finding's reproduction (a
payload written from the vendors' docs, tests/vendor_samples.py) that failed before its fix.
The rule throughout: when unsure whether a comment is a public agent reply, it is not one —
a visible false breach beats a hidden real one (docs/sources.md)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
from types import SimpleNamespace
from typing import Any

import faust
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from escalator.adapters.http_types import HttpError
from escalator.adapters.jira import jira_events
from escalator.adapters.ticket_doors import RecentDeliveries
from escalator.cli import main
from escalator.config.settings import Settings
from escalator.domain.ticket_sources import JiraMapping
from escalator.errors import ConfigError
from escalator.runtime import web
from escalator.runtime.app import Worker
from tests.unit.test_ticket_doors import JIRA, SOURCES, T0, ZENDESK, events, jira, policy, zendesk
from tests.vendor_samples import (
    AGENT,
    AUTOMATION,
    COLLEAGUE,
    CUSTOMER,
    jira_comment,
    jira_comment_event,
    jira_created,
    jira_item,
    jira_sd_property,
    jira_status,
    jira_updated,
    zendesk_event,
)

SITE_IDS = "jira/acme.atlassian.net/10042"


def jira_policy(extra: str) -> JiraMapping:
    """SOURCES' Jira mapping with `extra` lines added to `sources.jira`."""
    return policy(SOURCES.replace("  zendesk:", f"{extra}  zendesk:")).sources.jira


def comment_data(doc: dict[str, Any], mapping: JiraMapping = JIRA) -> dict[str, Any]:
    (made,) = jira(doc, mapping)
    data: dict[str, Any] = made["data"]
    return data


# --- 1. Jira comment privacy ------------------------------------------------------------------


def public_comment(**changes: Any) -> dict[str, Any]:
    doc = jira_comment("SUP-7", "10042", T0, "20001", "internal: DB?", public=True)
    doc["comment"].update(changes)
    return doc


@pytest.mark.parametrize(
    ("changes", "drop_flag", "public"),
    [
        # restricted to a role, even with jsdPublic true (review d1)
        ({"visibility": {"type": "role", "value": "Service Desk Team"}}, False, False),
        ({"properties": jira_sd_property(True)}, True, False),  # only the property (d2)
        ({"properties": jira_sd_property('{"internal": true}')}, True, False),
        ({"properties": jira_sd_property(True)}, False, False),  # jsdPublic true, property no
        ({"properties": jira_sd_property(False)}, True, True),
        ({}, True, False),  # no signal at all: private
        ({}, False, True),  # jsdPublic true and nothing against it
        ({"jsdPublic": False}, False, False),
    ],
)
def test_a_jira_comment_is_public_only_when_marked_so_and_nothing_says_otherwise(
    changes: dict[str, Any], drop_flag: bool, public: bool
) -> None:
    doc = public_comment(**changes)
    if drop_flag:
        del doc["comment"]["jsdPublic"]
    assert comment_data(doc)["public"] is public


# --- 2. Jira author roles ---------------------------------------------------------------------


def comment_by(author: dict[str, Any] | None, **fields: Any) -> dict[str, Any]:
    doc = jira_comment("SUP-7", "10042", T0, "20002", "any news?", public=True)
    if author is None:
        del doc["comment"]["author"]
    else:
        doc["comment"]["author"] = author
    doc["issue"]["fields"].update(fields)
    return doc


def test_a_participant_is_a_customer_not_an_agent() -> None:
    assert comment_data(comment_by(COLLEAGUE))["author_role"] == "customer"  # review d3a


def test_the_reporter_is_a_customer_when_the_issue_does_not_name_its_reporter() -> None:
    doc = comment_by(COLLEAGUE)
    del doc["issue"]["fields"]["reporter"]  # comment_created carries a brief issue (d3b)
    assert comment_data(doc)["author_role"] == "customer"


def test_a_comment_without_an_author_is_the_customers() -> None:
    assert comment_data(comment_by(None))["author_role"] == "customer"


def test_the_assignee_is_an_agent_and_a_listed_account_is_one() -> None:
    assignee = comment_by(COLLEAGUE, assignee=COLLEAGUE)
    assert comment_data(assignee)["author_role"] == "agent"
    assert comment_data(comment_by(AGENT))["author_role"] == "agent"  # SOURCES lists Ann
    assert comment_data(comment_by(AGENT), JiraMapping())["author_role"] == "customer"


def test_assignee_is_agent_false_reads_the_list_only() -> None:
    mapping = jira_policy("    assignee_is_agent: false\n")
    assert comment_data(comment_by(COLLEAGUE, assignee=COLLEAGUE), mapping) == {
        "author_role": "customer",
        "public": True,
        "body": "any news?",
    }


def test_a_customer_account_is_never_an_agent() -> None:
    listed = policy(SOURCES.replace('"5b10ac8d82e05b22cc7d4ef5"', '"qm:1a2b3c"')).sources.jira
    assert comment_data(comment_by(CUSTOMER), listed)["author_role"] == "customer"


# --- 3. apps and bots -------------------------------------------------------------------------


def test_an_automation_comment_makes_nothing() -> None:
    made = jira_events(orjson.dumps(comment_by(AUTOMATION)), JIRA)  # review d14
    assert made.events == ()
    assert made.answer == {"accepted": [], "ignored": "a comment by an app or a bot"}


def test_a_listed_bot_makes_nothing_but_the_changes_of_its_update_apply() -> None:
    mapping = jira_policy('    bots: ["5c00colleague"]\n')
    doc = jira_comment_event(
        "issue_commented", "SUP-7", "10042", T0, comment_by(COLLEAGUE)["comment"]
    )
    assert jira_events(orjson.dumps(doc), mapping).events == ()
    doc["changelog"] = {"id": "30001", "items": [jira_item("priority", "High", "Highest")]}
    assert [e["type"] for e in jira(doc, mapping)] == ["ticket.severity_changed"]


# --- 4. comment edits and deletions -----------------------------------------------------------


@pytest.mark.parametrize("kind", ["issue_comment_edited", "issue_comment_deleted"])
def test_an_edited_or_deleted_comment_is_not_a_new_comment(kind: str) -> None:
    comment = jira_comment("SUP-7", "10042", T0, "20001", "typo fixed", public=True)["comment"]
    doc = jira_comment_event(kind, "SUP-7", "10042", T0 + 6_000_000, comment)
    assert jira(doc) == []  # review d8: it was a reply dated at the edit
    commented = jira_comment_event("issue_commented", "SUP-7", "10042", T0, comment)
    assert [e["id"] for e in jira(commented)] == [f"{SITE_IDS}/comment/20001"]


# --- 5. event time ----------------------------------------------------------------------------


def test_the_cloudevent_time_is_the_vendors_event_time_not_the_delivery() -> None:
    late = zendesk_event("status_changed", "5158", T0, "e-pending", {"current": "PENDING"})
    (made,) = zendesk(late)  # a retry hours later still says when it happened
    assert made["time"] == "2026-11-24T10:00:00.000Z"
    update = jira_updated("SUP-7", "10042", T0, "30001", [jira_item("status", "Open", "Pending")])
    assert jira(update)[0]["time"] == "2026-11-24T10:00:00.000Z"


# --- 6. tickets without a priority ------------------------------------------------------------


def test_a_zendesk_ticket_without_priority_takes_default_priority() -> None:
    email = zendesk_event("created", "6001", T0, "e-c", priority=None, via={"channel": "email"})
    with pytest.raises(HttpError) as caught:  # review d6
        zendesk(email)
    assert caught.value.message == (
        "detail.priority: empty; set a priority in Zendesk (a trigger) or give "
        "sources.zendesk.default_priority"
    )
    mapping = policy(SOURCES + "    default_priority: P3\n").sources.zendesk
    assert zendesk(email, mapping)[0]["data"]["severity"] == "P3"


def test_a_jira_issue_without_priority_takes_default_priority() -> None:
    doc = jira_created("SUP-7", "10042", T0)
    del doc["issue"]["fields"]["priority"]
    with pytest.raises(HttpError) as caught:
        jira(doc)
    assert "sources.jira.default_priority" in caught.value.message
    mapping = jira_policy("    default_priority: P2\n")
    assert jira(doc, mapping)[0]["data"]["severity"] == "P2"


def test_default_priority_must_be_a_severity() -> None:
    with pytest.raises(ConfigError, match=r"sources\.zendesk\.default_priority: 'normal'"):
        policy(SOURCES + "    default_priority: normal\n")


# --- 7./8. tiers and customer tiers -----------------------------------------------------------


def test_a_tier_field_without_values_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"sources\.jira\.tier: give `values`"):  # review d7
        policy("\nsources:\n  jira:\n    tier: {field: customfield_10060}\n")


def test_a_customer_tier_read_as_it_is_takes_the_targets_spelling() -> None:
    mapping = policy("\nsources:\n  jira:\n    customer_tier: {field: customfield_10050}\n")
    created = jira(jira_created("SUP-9", "10050", T0), mapping.sources.jira)  # review d13
    assert created[0]["data"]["customer_tier"] == "enterprise"  # Jira says "Enterprise"


# --- 9. ESCALATOR_MAX_REQUEST_BYTES above aiohttp's 1 MiB -------------------------------------


def door_worker(app: faust.App | None = None, **settings: Any) -> SimpleNamespace:
    """A worker with the doors and a Kafka that acknowledges after 50 ms (`fail`: the next
    sends fail)."""

    class SlowTopic:
        def __init__(self) -> None:
            self.sent: list[bytes] = []
            self.fail = 0

        async def send(self, key: bytes, value: bytes) -> Any:
            loop = asyncio.get_running_loop()
            done = loop.create_future()
            if self.fail:
                self.fail -= 1
                loop.call_later(0.05, done.set_exception, RuntimeError("broker down"))
            else:
                self.sent.append(value)
                loop.call_later(0.05, done.set_result, None)
            return done

    counted: list[tuple[str, str]] = []
    return SimpleNamespace(
        app=app or faust.App(f"door-{id(counted)}", broker="memory://", web_enabled=True),
        settings=Settings(**settings),
        policy=policy(),
        tickets=SlowTopic(),
        alert_stream=SimpleNamespace(topic=SlowTopic()),
        ticket_stream=SimpleNamespace(lanes=[]),
        table=SimpleNamespace(name="tickets"),
        metrics=SimpleNamespace(ingest_request=lambda s, o: counted.append((s, o))),
        counted=counted,
    )


def worker_app(settings: Settings) -> faust.App:
    """The Faust app runtime/app.py makes for `settings`."""
    fake = SimpleNamespace(settings=settings, _security=dict)
    app: faust.App = Worker._app(fake)  # type: ignore[arg-type]
    return app


@pytest.mark.parametrize(("limit", "status"), [(4 * 1024 * 1024, 202), (1_500_000, 413)])
async def test_the_request_limit_above_one_mib_is_the_doors(limit: int, status: int) -> None:
    settings = Settings(http_token=None, max_request_bytes=limit, app_id=f"door-big-{limit}")
    worker = door_worker(worker_app(settings), http_token=None, max_request_bytes=limit)
    web.install(worker)  # type: ignore[arg-type]
    doc = jira_created("SUP-7", "10042", T0, description="x" * 2_000_000)  # review test_big
    async with TestClient(TestServer(worker.app.web.web_app)) as client:
        body = io.BytesIO(orjson.dumps(doc))
        answer = await client.post(
            "/webhooks/jira", data=body, headers={"Content-Type": "application/json"}
        )
        assert answer.status == status
        shown = await answer.json()  # escalator's JSON either way, not aiohttp's text
        assert ("error" in shown) is (status == 413)
    expected = "accepted" if status == 202 else "too_large"
    assert worker.counted == [("jira", expected)]


# --- 10. concurrent deliveries of one comment -------------------------------------------------


def sign(secret: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature": f"sha256={digest}", "Content-Type": "application/json"}


def both_deliveries() -> tuple[bytes, bytes]:
    comment = jira_comment("SUP-7", "10042", T0, "20001", "On it", public=True)
    update = jira_comment_event("issue_commented", "SUP-7", "10042", T0, comment["comment"])
    return orjson.dumps(comment), orjson.dumps(update)


async def test_a_comment_delivered_twice_at_once_is_produced_once() -> None:
    worker = door_worker(jira_webhook_secret="s3cret")
    web.install(worker)  # type: ignore[arg-type]
    a, b = both_deliveries()
    async with TestClient(TestServer(worker.app.web.web_app)) as client:
        first, second = await asyncio.gather(
            client.post("/webhooks/jira", data=a, headers=sign("s3cret", a)),
            client.post("/webhooks/jira", data=b, headers=sign("s3cret", b)),
        )
        answers = sorted([await first.json(), await second.json()], key=str)
    ids = [orjson.loads(v)["id"] for v in worker.tickets.sent]
    assert ids == [f"{SITE_IDS}/comment/20001"]  # review test_door_race
    assert answers == [
        {"accepted": [f"{SITE_IDS}/comment/20001"]},
        {"accepted": [], "duplicate": [f"{SITE_IDS}/comment/20001"]},
    ]
    assert sorted(worker.counted) == [("jira", "accepted"), ("jira", "duplicate")]


async def test_when_the_first_delivery_fails_the_second_produces() -> None:
    worker = door_worker(jira_webhook_secret="s3cret")
    worker.tickets.fail = 1
    web.install(worker)  # type: ignore[arg-type]
    a, b = both_deliveries()
    async with TestClient(TestServer(worker.app.web.web_app)) as client:
        first, second = await asyncio.gather(
            client.post("/webhooks/jira", data=a, headers=sign("s3cret", a)),
            client.post("/webhooks/jira", data=b, headers=sign("s3cret", b)),
        )
        assert sorted([first.status, second.status]) == [202, 503]
    assert [orjson.loads(v)["id"] for v in worker.tickets.sent] == [f"{SITE_IDS}/comment/20001"]


async def test_a_waiting_delivery_gives_up_after_its_wait_and_produces() -> None:
    recent = RecentDeliveries()
    made = jira_events(both_deliveries()[0], JIRA)
    _, claimed = await recent.admit(made, T0)
    assert claimed == (f"{SITE_IDS}/comment/20001",)
    again, mine = await recent.admit(made, T0, wait_s=0.05)  # the first never settles
    assert not again.duplicate
    assert mine == ()  # still the first's; settling the second releases nothing of it
    recent.settle(claimed, made.events, acked=True, now=T0)
    assert (await recent.admit(made, T0))[0].duplicate


# --- 11. ids across Jira sites ----------------------------------------------------------------


def test_two_sites_issue_ids_are_two_tickets_events() -> None:
    one = jira_created("SUP-7", "10042", T0)
    other = jira_created("OPS-3", "10042", T0)  # review d10: the same id on another site
    other["issue"]["self"] = "https://globex.atlassian.net/rest/api/2/issue/10042"
    recent = RecentDeliveries()
    first = recent.check(jira_events(orjson.dumps(one), JIRA), T0)
    recent.remember(first.events, T0)
    second = recent.check(jira_events(orjson.dumps(other), JIRA), T0)
    assert not second.duplicate
    assert second.events[0].event_id == "jira/globex.atlassian.net/10042/created"


def test_an_issue_without_its_address_is_refused() -> None:
    doc = jira_created("SUP-7", "10042", T0)
    del doc["issue"]["self"]
    with pytest.raises(HttpError, match=r"^issue\.self: "):
        jira(doc)


# --- 12. statuses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Reopened", "Under review", "In Review", "Backlog", "Implementing"]
)
def test_common_workflow_statuses_are_known(name: str) -> None:
    item = jira_item("status", "Resolved", name)  # review d11
    (made,) = jira(jira_updated("SUP-7", "10042", T0, "30009", [item]), JiraMapping())
    assert made["data"] == {"status": "open"}


@pytest.mark.parametrize(
    ("category", "status"), [("new", "open"), ("indeterminate", "open"), ("done", "solved")]
)
def test_an_unknown_status_goes_by_its_category(category: str, status: str) -> None:
    doc = jira_updated(
        "SUP-7", "10042", T0, "30009", [jira_item("status", "Open", "Triage by robots")]
    )
    doc["issue"]["fields"]["status"] = jira_status("Triage by robots", category)
    assert jira(doc)[0]["data"] == {"status": status}


def test_an_unknown_status_is_refused_alone_and_the_other_items_apply() -> None:
    items = [jira_item("status", "Open", "Limbo"), jira_item("priority", "High", "Highest")]
    made = jira_events(orjson.dumps(jira_updated("SUP-7", "10042", T0, "30009", items)), JIRA)
    assert [e["type"] for e in events(made)] == ["ticket.severity_changed"]
    assert made.answer == {
        "accepted": [f"{SITE_IDS}/changelog/30009/1"],
        "refused": [
            "changelog.items[0].toString: unknown status 'Limbo'; map it in sources.jira.statuses"
        ],
    }


def test_statuses_in_the_policy_extend_the_defaults() -> None:
    mapping = jira_policy("    statuses: {Limbo: on_hold}\n")
    items = [jira_item("status", "Open", "Limbo"), jira_item("status", "Limbo", "Done")]
    made = jira(jira_updated("SUP-7", "10042", T0, "30009", items), mapping)
    assert [e["data"]["status"] for e in made] == ["on_hold", "solved"]


# --- 13. a blank signing secret ---------------------------------------------------------------


@pytest.mark.parametrize("key", ["jira_webhook_secret", "zendesk_signing_secret"])
def test_a_blank_secret_stops_the_doors_install(key: str) -> None:
    worker = door_worker(**{key: " "})
    with pytest.raises(ConfigError, match="set but empty"):
        web.install(worker)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "env", ["ESCALATOR_JIRA_WEBHOOK_SECRET", "ESCALATOR_ZENDESK_SIGNING_SECRET"]
)
def test_the_worker_will_not_start_with_an_empty_secret(env: str) -> None:
    result = CliRunner().invoke(main, ["worker"], env={env: ""})  # review: a silent fallback
    assert result.exit_code == 2
    assert "is set but empty" in result.output
    assert env in result.output


def test_zendesk_default_mapping_is_unchanged() -> None:
    assert zendesk(zendesk_event("created", "5158", T0, "e1"), ZENDESK)[0]["id"] == "zendesk/e1"


async def test_a_delivery_refused_in_part_is_counted_partial() -> None:
    worker = door_worker(http_token=None)
    web.install(worker)  # type: ignore[arg-type]
    items = [jira_item("status", "Open", "Limbo"), jira_item("priority", "High", "Highest")]
    body = orjson.dumps(jira_updated("SUP-7", "10042", T0, "30009", items))
    async with TestClient(TestServer(worker.app.web.web_app)) as client:
        answer = await client.post("/webhooks/jira", data=body)
        assert answer.status == 202
        assert (await answer.json())["refused"] == [
            "changelog.items[0].toString: unknown status 'Limbo'; map it in sources.jira.statuses"
        ]
    assert worker.counted == [("jira", "partial")]
    assert len(worker.tickets.sent) == 1
