"""HTTP endpoints on the worker's web port (Faust's aiohttp server).

- POST /events            CloudEvents HTTP binding → tickets.events or monitoring.alerts
- POST /alerts/alertmanager  Alertmanager webhooks (v4) → one alert CloudEvent per alert
- POST /webhooks/jira, /webhooks/zendesk  ticket systems' webhooks → ticket CloudEvents
- POST /v2/enqueue, /alerts/pagerduty  PagerDuty Events API v2 → one alert or incident event
- POST /alerts/grafana    Grafana Alerting's webhook contact point → one per alert
- POST /maintenance       declare an ad-hoc maintenance window → maintenance.started
- POST /maintenance/end   end one early → maintenance.ended
- GET  /tickets/{id}      live SLA status, answered by the worker that owns the ticket
- POST /incidents/{id}/ack|unack|resolve|escalate   a person acts on an incident
- POST /tickets/{id}/ack|snooze   the ticket's tier has it; hold its inactivity escalation
- GET  /schedules/{name}?at=…  who is on call in a policy schedule at `at` (default now)
- POST /schedules/{name}/overrides  put someone on call for a while → oncall.override
- POST /policy            validate a policy (YAML body) and publish it to every worker
- GET  /health, /metrics  always open; everything else needs the bearer token when one is set
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp.web import HTTPRequestEntityTooLarge
from faust.web import Request, Response, View

from escalator.adapters import pagerduty
from escalator.adapters.alerts import alertmanager_events, grafana_events
from escalator.adapters.http_actions import incident_action, ticket_action
from escalator.adapters.http_ingest import Accepted, HttpError, parse_ingest
from escalator.adapters.http_types import Authorize, Build, Ingested, Refusal, ingested
from escalator.adapters.jira import jira_events
from escalator.adapters.jira import verify_signature as jira_signature
from escalator.adapters.maintenance import ENDED, STARTED, maintenance_request
from escalator.adapters.overrides import override_request
from escalator.adapters.schedule_view import schedule_view
from escalator.adapters.state_codec import decode_expired, decode_state
from escalator.adapters.state_view import ticket_view
from escalator.adapters.ticket_doors import RecentDeliveries
from escalator.adapters.zendesk import verify_signature as zendesk_signature
from escalator.adapters.zendesk import zendesk_events
from escalator.domain.schedules import Override
from escalator.errors import ConfigError
from escalator.runtime.policy_topic import KEY, check_version, policy_record
from escalator.runtime.streams import wall_ms

if TYPE_CHECKING:
    from escalator.runtime.app import Worker

log = logging.getLogger("escalator.web")


def check_auth(request: Request, token: str | None) -> None:
    """Bearer-token check (constant time); no token configured means open."""
    if not bearer_ok(request.headers, token):
        raise HttpError(401, "unauthorized", "missing or wrong bearer token")


def bearer_ok(headers: Mapping[str, str], token: str | None) -> bool:
    if not token:
        return True
    scheme, _, given = headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


async def read_body(request: Request, limit: int) -> bytes:
    length = getattr(request, "content_length", None)  # aiohttp's Request at run time
    if length is not None and length > limit:
        raise HttpError(413, "too_large", f"request body over {limit} bytes")
    try:
        body: bytes = await request.read()
    except HTTPRequestEntityTooLarge:  # a chunked body over aiohttp's client_max_size
        raise HttpError(413, "too_large", f"request body over {limit} bytes") from None
    if len(body) > limit:
        raise HttpError(413, "too_large", f"request body over {limit} bytes")
    return body


def signed(
    secret: str | None, verify: Callable[[Mapping[str, str], bytes, str], None], name: str
) -> Authorize | None:
    """A vendor's signature made with `secret` authenticates the door; without a secret the
    bearer token does (None: the door's default). A secret set but empty is a mistake (an
    unfilled template, a missing file): refused, never taken as "no secret"."""
    if secret is None:
        return None
    if not secret.strip():
        raise ConfigError("set but empty; give the secret or unset it", file="env", field=name)
    return lambda headers, body: verify(headers, body, secret)


def outcome_of(refused: HttpError) -> str:
    """The escalator_ingest_requests_total outcome of a refused request."""
    if refused.status == 401:
        return "unauthorized"
    if refused.status == 413:
        return "too_large"
    return "refused"


def install(worker: Worker) -> None:
    """Register escalator's pages on the worker's Faust app."""
    app = worker.app
    settings = worker.settings

    def door(
        source: str,
        build: Build,
        *,
        authorize: Authorize | None = None,
        refusal: Refusal | None = None,
        recent: RecentDeliveries | None = None,
    ) -> type[View]:
        """One ingest door: the bearer token (or `authorize`, a vendor's signature, which
        sees the body), the size limit, `build` turning the request into events (an
        adapter: HttpError naming the field otherwise), then produced and acknowledged.
        The answer is escalator's unless `build` gives the vendor's own; `refusal` shapes
        errors where a vendor's client expects its own (PagerDuty's). `recent` remembers the
        events produced lately: a retry of them is answered 202 without producing them
        again; `Ingested.accepted` is told once Kafka acknowledged. Every request counts
        once in escalator_ingest_requests_total."""

        class Door(View):
            async def post(self, request: Request) -> Response:
                headers = request.headers
                try:
                    if authorize is None:
                        check_auth(request, settings.http_token)
                    body = await read_body(request, settings.max_request_bytes)
                    if authorize is not None:
                        authorize(headers, body)
                    arrival = wall_ms()
                    accepted = build(headers, body, arrival)
                except HttpError as exc:
                    worker.metrics.ingest_request(source, outcome_of(exc))
                    shown = exc.body() if refusal is None else refusal(exc)
                    return self.json(shown, status=exc.status)
                claimed: tuple[str, ...] = ()
                if recent is not None:
                    accepted, claimed = await recent.admit(accepted, arrival)
                acked = False
                try:
                    response = await produce_acked(self, accepted.events, answer=accepted.answer)
                    acked = response.status < 300
                finally:
                    if recent is not None:
                        recent.settle(claimed, accepted.events, acked=acked, now=wall_ms())
                outcome = "accepted" if acked else "unavailable"
                refused = (accepted.answer or {}).get("refused")
                if outcome == "accepted" and refused:
                    # Some items were produced, some refused (a Jira changelog): counted
                    # apart so a mapping gap shows without reading the vendor's logs.
                    log.warning("%s: accepted in part, refused %s", source, refused)
                    outcome = "partial"
                if outcome == "accepted" and accepted.accepted is not None:
                    accepted.accepted()
                if outcome == "accepted" and accepted.duplicate:
                    outcome = "duplicate"
                worker.metrics.ingest_request(source, outcome)
                return response

        return Door

    app.page("/events")(
        door(
            "cloudevents",
            lambda headers, body, _: ingested(
                parse_ingest(headers.get("Content-Type"), body, headers)
            ),
        )
    )
    app.page("/alerts/alertmanager")(
        door("alertmanager", lambda _, body, arrival: ingested(alertmanager_events(body, arrival)))
    )

    # Ticket systems' webhooks (Jira Service Management, Zendesk): docs/sources.md.
    # The mapping is the policy's `sources` section, read per request: a policy applied
    # with POST /policy changes it at once, on every worker alike.
    app.page("/webhooks/jira")(
        door(
            "jira",
            lambda _, body, __: jira_events(body, worker.policy.sources.jira),
            authorize=signed(
                settings.jira_webhook_secret, jira_signature, "ESCALATOR_JIRA_WEBHOOK_SECRET"
            ),
            recent=RecentDeliveries(),
        )
    )
    app.page("/webhooks/zendesk")(
        door(
            "zendesk",
            lambda _, body, __: zendesk_events(body, worker.policy.sources.zendesk),
            authorize=signed(
                settings.zendesk_signing_secret,
                lambda headers, body, secret: zendesk_signature(headers, body, secret, wall_ms()),
                "ESCALATOR_ZENDESK_SIGNING_SECRET",
            ),
            recent=RecentDeliveries(),
        )
    )

    # Monitoring tools' alerts (PagerDuty Events API v2, Grafana Alerting): docs/sources.md.
    recent = pagerduty.RecentRequests()

    def pagerduty_authorize(headers: Mapping[str, str], body: bytes) -> None:
        """The bearer token, or a routing key of ESCALATOR_PAGERDUTY_ROUTING_KEYS (most
        tools that page PagerDuty can send nothing but the routing key)."""
        if bearer_ok(headers, settings.http_token):
            return
        given = (pagerduty.routing_key_of(body) or "").encode()
        routes = settings.pagerduty_routing_keys
        # Every key compared (a list, not a generator): no early exit to time.
        if any([hmac.compare_digest(given, key.encode()) for key in routes]):
            return
        raise HttpError(
            401, "unauthorized", "missing or wrong bearer token, and no known routing_key"
        )

    def pagerduty_build(_: Mapping[str, str], body: bytes, arrival: int) -> Ingested:
        rules = worker.policy.alerts
        names = pagerduty.Labels(rules.severity_label, next(iter(rules.service_labels), None))
        routes = settings.pagerduty_routing_keys
        return pagerduty.pagerduty_request(body, arrival, routes, recent, names)

    pagerduty_door = door(
        "pagerduty", pagerduty_build, authorize=pagerduty_authorize, refusal=pagerduty.refusal
    )
    app.page("/v2/enqueue")(pagerduty_door)
    app.page("/alerts/pagerduty")(pagerduty_door)
    app.page("/alerts/grafana")(
        door("grafana", lambda _, body, arrival: ingested(grafana_events(body, arrival)))
    )

    def action_view(build: Callable[[str, str, bytes, int], Accepted]) -> type[View]:
        """A person's action on `{subject}` (an incident or a ticket): the event `build`
        makes of it (adapters/http_actions.py), produced like any ingest."""

        class Action(View):
            async def post(self, request: Request, subject: str, action: str) -> Response:
                try:
                    check_auth(request, settings.http_token)
                    body = await read_body(request, settings.max_request_bytes)
                    accepted = build(subject, action, body, wall_ms())
                except HttpError as exc:
                    return self.json(exc.body(), status=exc.status)
                return await produce_acked(self, [accepted])

        return Action

    # An incident is named by its id (`<fingerprint>/<opened at>`) or its fingerprint.
    app.page("/incidents/{subject:.+}/{action:[a-z]+}")(action_view(incident_action))
    app.page("/tickets/{subject}/{action:[a-z]+}")(action_view(ticket_action))

    def maintenance_view(kind: str) -> type[View]:
        class Maintenance(View):
            async def post(self, request: Request) -> Response:
                try:
                    check_auth(request, settings.http_token)
                    body = await read_body(request, settings.max_request_bytes)
                    accepted = maintenance_request(body, kind, wall_ms(), str(uuid.uuid4()))
                except HttpError as exc:
                    return self.json(exc.body(), status=exc.status)
                window = orjson.loads(accepted.value)["data"]["id"]
                return await produce_acked(self, [accepted], {"id": window})

        return Maintenance

    app.page("/maintenance")(maintenance_view(STARTED))
    app.page("/maintenance/end")(maintenance_view(ENDED))

    class ScheduleOverrides(View):
        async def post(self, request: Request, name: str) -> Response:
            try:
                check_auth(request, settings.http_token)
                body = await read_body(request, settings.max_request_bytes)
                accepted = override_request(body, name, worker.policy, wall_ms(), str(uuid.uuid4()))
            except HttpError as exc:
                return self.json(exc.body(), status=exc.status)
            override = orjson.loads(accepted.value)["data"]["id"]
            return await produce_acked(self, [accepted], {"id": override})

    app.page("/schedules/{name}/overrides")(ScheduleOverrides)

    async def produce_acked(
        view: View,
        accepted: Sequence[Accepted],
        extra: dict[str, Any] | None = None,
        answer: dict[str, Any] | None = None,
    ) -> Response:
        """Produce to the topic of each event's kind; 202 only after Kafka acknowledged all.
        `extra`: more fields of the answer (the id of the window or override made);
        `answer`: the whole answer instead, where a vendor's client expects its own."""
        alerts = worker.alert_stream.topic
        try:
            futures = [
                await (alerts if item.alert else worker.tickets).send(
                    key=item.key, value=item.value
                )
                for item in accepted
            ]
            await asyncio.wait_for(asyncio.gather(*futures), timeout=30)
        except Exception as exc:  # noqa: BLE001 - any produce failure means "try again"
            log.warning("ingest: Kafka did not acknowledge %d events: %r", len(accepted), exc)
            error = HttpError(503, "kafka_unavailable", "Kafka did not acknowledge; retry")
            return view.json(error.body(), status=503)
        if answer is not None:
            return view.json(answer, status=202)
        body = {"accepted": [item.event_id for item in accepted], **(extra or {})}
        return view.json(body, status=202)

    class PolicyApply(View):
        async def post(self, request: Request) -> Response:
            try:
                check_auth(request, settings.http_token)
                body = await read_body(request, settings.max_request_bytes)
                policy, value = policy_record(body.decode("utf-8", "replace"), "POST /policy")
                check_version(worker.policy, policy)
            except HttpError as exc:
                return self.json(exc.body(), status=exc.status)
            except ConfigError as exc:
                refused = HttpError(400, "invalid_policy", str(exc))
                return self.json(refused.body(), status=400)
            future = await worker.policy_topic.send(key=KEY, value=value, partition=0)
            await asyncio.wait_for(future, timeout=30)
            log.info("policy %s applied over HTTP", policy.version)
            return self.json({"applied": policy.version}, status=202)

        async def get(self, request: Request) -> Response:
            try:
                check_auth(request, settings.http_token)
            except HttpError as exc:
                return self.json(exc.body(), status=exc.status)
            return self.json({"version": worker.policy.version})

    app.page("/policy")(PolicyApply)

    @app.page("/tickets/{ticket_id}")
    @app.table_route(table=worker.table, match_info="ticket_id")
    async def ticket(web: View, request: Request, ticket_id: str) -> Response:
        try:
            check_auth(request, settings.http_token)
        except HttpError as exc:
            return web.json(exc.body(), status=exc.status)
        raw = worker.table.get(ticket_id.encode())
        expired = None if raw is None else decode_expired(raw)
        if raw is None or expired is not None:
            detail = "was deleted after retention" if expired else "is not known here"
            missing = HttpError(404, "not_found", f"ticket {ticket_id!r} {detail}")
            return web.json(missing.body(), status=404)
        return web.json(ticket_view(decode_state(raw)[0], worker.processor.policy))

    @app.page("/schedules/{name}")
    async def schedule(web: View, request: Request, name: str) -> Response:
        try:
            check_auth(request, settings.http_token)
            answer = schedule_view(
                worker.policy, name, request.query.get("at"), wall_ms(), overrides_of(worker, name)
            )
        except HttpError as exc:
            return web.json(exc.body(), status=exc.status)
        return web.json(answer)

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        return web.json(worker.status())


def overrides_of(worker: Worker, name: str) -> Sequence[Override]:
    """The overrides of schedule `name` this worker knows, oldest first (the last of
    overlapping ones wins), so that this page answers as pages are resolved.

    Any partition's copy will do: every partition of both lanes applies the same broadcasts,
    so all hold the same list once they are applied (a copy may lag another by the moment a
    broadcast takes to reach it). The incident lane's lowest partition this worker owns is
    read, else the ticket lane's; a worker that owns no partition of either knows none, and
    answers from the rotation alone."""
    for stream in (worker.alert_stream, worker.ticket_stream):
        known = stream.lanes[0].processor.overrides
        if known:
            return [o for o in known[min(known)] if o.schedule == name]
    return ()
