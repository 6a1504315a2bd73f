"""`GET /schedules/{name}?at=…`: who is on call and until when; 404 naming the schedule, 400
naming `at`, the bearer token like every other page."""

from __future__ import annotations

from types import SimpleNamespace

import faust
import pytest
from aiohttp.test_utils import TestClient, TestServer

from escalator.adapters.http_types import HttpError
from escalator.adapters.schedule_view import schedule_view
from escalator.config.settings import Settings
from escalator.domain.schedules import Override
from escalator.runtime import web
from tests.helpers import example_policy, ms

# examples/policy.yaml: weekly alice/bob/carol from Monday 2026-11-02 09:00 New York time,
# under a daily dave/erin layer on weekdays 09:00-17:00.
POLICY = example_policy()


def test_who_is_on_call_and_until_when() -> None:
    # Tuesday 2026-11-24 10:00 EST: dave, until 17:00 EST (22:00Z).
    assert schedule_view(POLICY, "primary", "2026-11-24T10:00:00-05:00", 0) == {
        "schedule": "primary",
        "at": "2026-11-24T15:00:00.000Z",
        "on_call": "user:dave",
        "until": "2026-11-24T22:00:00.000Z",
        "policy_version": "example-2026.11",
    }


def test_at_defaults_to_now_and_a_gap_is_null_until_the_rotation_starts() -> None:
    view = schedule_view(POLICY, "primary", None, ms("2026-11-01T12:00:00Z"))
    assert view["at"] == "2026-11-01T12:00:00.000Z"
    assert (view["on_call"], view["until"]) == (None, "2026-11-02T14:00:00.000Z")


def test_an_override_answers_while_it_lasts() -> None:
    cover = Override("primary", "user:zoe", ms("2026-11-24T16:00:00Z"), ms("2026-11-24T18:00:00Z"))
    view = schedule_view(POLICY, "primary", "2026-11-24T17:00:00Z", 0, [cover])
    assert (view["on_call"], view["until"]) == ("user:zoe", "2026-11-24T18:00:00.000Z")


@pytest.mark.parametrize(
    ("name", "at", "status", "body"),
    [
        (
            "secondary",
            None,
            404,
            {
                "error": "not_found",
                "message": "schedule 'secondary' is not defined in policy example-2026.11 "
                "(schedules: primary)",
            },
        ),
        (
            "primary",
            "tomorrow",
            400,
            {
                "error": "invalid_time",
                "message": "at 'tomorrow' is not an RFC 3339 date-time such as "
                "2026-11-24T10:00:00Z",
            },
        ),
        (
            "primary",
            "2026-11-24T10:00:00 05:00",  # ?at=…+05:00 unescaped: the '+' became a blank
            400,
            {
                "error": "invalid_time",
                "message": "at '2026-11-24T10:00:00 05:00' is not an RFC 3339 date-time such "
                "as 2026-11-24T10:00:00Z; write a '+' offset as %2B in a URL",
            },
        ),
        (
            "primary",
            "0001-01-01T00:00:00Z",
            400,
            {
                "error": "invalid_time",
                "message": "at '0001-01-01T00:00:00Z': schedules answer for the years 1900 to 8999",
            },
        ),
    ],
)
def test_errors_name_the_schedule_or_the_at_field(
    name: str, at: str | None, status: int, body: dict[str, str]
) -> None:
    with pytest.raises(HttpError) as caught:
        schedule_view(POLICY, name, at, 0)
    assert (caught.value.status, caught.value.body()) == (status, body)


async def test_the_worker_page_answers_with_the_bearer_token_only() -> None:
    app = faust.App("schedule-page-test", broker="memory://", web_enabled=True)
    worker = SimpleNamespace(
        app=app,
        settings=Settings(http_token="t0k3n", max_request_bytes=1_000),
        policy=POLICY,
        table=SimpleNamespace(name="tickets"),
        # Lanes whose partitions know no overrides (tests/unit/test_overrides.py: with some).
        alert_stream=SimpleNamespace(
            lanes=[SimpleNamespace(processor=SimpleNamespace(overrides={}))]
        ),
        ticket_stream=SimpleNamespace(
            lanes=[SimpleNamespace(processor=SimpleNamespace(overrides={}))]
        ),
    )
    web.install(worker)  # type: ignore[arg-type]
    token = {"Authorization": "Bearer t0k3n"}
    async with TestClient(TestServer(app.web.web_app)) as client:  # type: ignore[attr-defined]
        found = await client.get("/schedules/primary?at=2026-11-24T15:00:00Z", headers=token)
        assert found.status == 200
        assert await found.json() == schedule_view(POLICY, "primary", "2026-11-24T15:00:00Z", 0)
        offset = await client.get(
            "/schedules/primary?at=2026-11-24T10:00:00%2D05:00", headers=token
        )
        assert (await offset.json())["on_call"] == "user:dave"
        missing = await client.get("/schedules/secondary", headers=token)
        assert missing.status == 404
        refused = await client.get("/schedules/primary")
        assert refused.status == 401
