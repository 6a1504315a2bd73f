"""One delivery attempt per destination type: HTTP (aiohttp, already Faust's web stack) and SMTP
(aiosmtplib: STARTTLS, implicit TLS and AUTH on asyncio, with timeouts that cancel cleanly —
what `smtplib` in a thread pool would need hand-written around it).

An attempt never raises for a destination's failure: it returns an `Attempt` with the outcome
(domain/notify/retry.py), the status and the answer's body, which the dispatcher retries or
dead-letters.
"""

from __future__ import annotations

import email.policy
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import aiosmtplib
import orjson

from escalator.config.notifier_file import NotifierConfig, Route
from escalator.domain.notify import messages
from escalator.domain.notify.notification import (
    EMAIL,
    PAGERDUTY,
    SLACK,
    TRIGGER,
    WEBHOOK,
    Notification,
    channel_target,
)
from escalator.domain.notify.retry import (
    DELIVERED,
    FAILED,
    RETRY,
    classify_http,
    classify_smtp,
    parse_retry_after,
)

log = logging.getLogger("escalator.notify")

BODY_KEPT: Final = 4096  # of a destination's answer, for logs and dead letters
# Slack Web API errors (HTTP 200, `ok: false`) worth another try; any other is permanent.
SLACK_TRANSIENT: Final = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
USER_AGENT: Final = "escalator-notify"
# Client errors trying again cannot cure (a malformed or non-HTTP URL, a bad answer's framing
# is not among them): the request never left.
PERMANENT_CLIENT_ERRORS: Final = (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError)
MAIL_POLICY: Final = email.policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True, slots=True)
class Attempt:
    outcome: str  # DELIVERED, RETRY or FAILED
    status: int | None  # HTTP status or SMTP reply code; None when nothing answered
    body: str
    retry_after_ms: int | None = None
    result: Mapping[str, Any] = field(default_factory=dict)  # e.g. a Slack post's channel and ts
    messages: int = 1  # messages it put in front of people (a long digest may take several)


@dataclass(frozen=True, slots=True)
class SlackPage:
    """The message a bot-token trigger posted (stored in the notifier's table)."""

    channel_id: str
    ts: str
    text: str


def _now_ms() -> int:
    return int(time.time() * 1000)


class Senders:
    """Sends to every destination type. `env` holds the secrets notifier.yaml names."""

    def __init__(
        self, config: NotifierConfig, env: Mapping[str, str], session: aiohttp.ClientSession
    ) -> None:
        self.config = config
        self.env = env
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=config.http_timeout_ms / 1000)

    # -- one notification --

    async def send(
        self, route: Route, n: Notification, raw: bytes, page: SlackPage | None = None
    ) -> Attempt:
        target = channel_target(route.channel)
        if route.kind == PAGERDUTY:
            service = self.config.pagerduty[target]
            body = messages.pagerduty_event(n, self.env[service.routing_key_env], service.severity)
            return await self._post_json(self.config.pagerduty_url, body, n.id)
        if route.kind == SLACK:
            if self.config.slack_mode(target) == "webhook":
                url = self.env[str(self.config.slack[target].webhook_url_env)]
                return await self._post_json(url, messages.slack_webhook_message(n), n.id)
            return await self._slack_bot(target, n, page)
        if route.kind == EMAIL:
            return await self._mail(messages.email_message(n, self._sender(), target))
        if route.kind == WEBHOOK:
            return await self._webhook(target, raw, n.id, n.action)
        return Attempt(FAILED, None, f"no sender for channel type {route.kind!r}")

    # -- a digest (Slack channels and mailboxes only) --

    async def send_digest(self, route: Route, items: Sequence[Notification]) -> Attempt:
        target = channel_target(route.channel)
        key = messages.digest_id(items)
        if route.kind == EMAIL:
            return await self._mail(messages.email_digest(items, self._sender(), target))
        texts = messages.slack_digest_text(items)
        sent = 0
        for index, text in enumerate(texts):
            attempt = await self._slack_text(target, text, f"{key}/{index}")
            if attempt.outcome != DELIVERED:
                return attempt  # the whole digest is tried again (same idempotency keys)
            sent += 1
        return Attempt(DELIVERED, 200, "ok", messages=sent)

    async def _slack_text(self, target: str, text: str, key: str) -> Attempt:
        if self.config.slack_mode(target) == "webhook":
            url = self.env[str(self.config.slack[target].webhook_url_env)]
            return await self._post_json(url, {"text": text}, key)
        return await self._slack_api("chat.postMessage", {"channel": target, "text": text}, key)

    # -- HTTP --

    async def _post_json(
        self, url: str, body: Mapping[str, Any], key: str, headers: Mapping[str, str] = {}
    ) -> Attempt:
        return await self._post(
            url, orjson.dumps(body), key, {"Content-Type": "application/json", **headers}
        )

    async def _post(self, url: str, data: bytes, key: str, headers: Mapping[str, str]) -> Attempt:
        sent = {
            "User-Agent": USER_AGENT,
            messages.IDEMPOTENCY_HEADER: key,
            **headers,
        }
        try:
            async with self.session.post(
                url, data=data, headers=sent, timeout=self.timeout
            ) as response:
                text = (await response.read())[:BODY_KEPT].decode("utf-8", "replace")
                return Attempt(
                    classify_http(response.status),
                    response.status,
                    text,
                    parse_retry_after(response.headers.get("Retry-After"), _now_ms()),
                    _json(text),
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            # Only the exception's class and the host: aiohttp's messages quote the URL, and
            # a Slack incoming webhook's URL is its secret.
            outcome = FAILED if isinstance(exc, PERMANENT_CLIENT_ERRORS) else RETRY
            return Attempt(outcome, None, f"{type(exc).__name__} (host {_host(url)})")

    async def _webhook(self, name: str, raw: bytes, key: str, action: str) -> Attempt:
        hook = self.config.webhooks[name]
        url = hook.url or self.env[str(hook.url_env)]
        headers = {
            "Content-Type": "application/cloudevents+json",
            "X-Escalator-Delivery": key,
            "X-Escalator-Action": action,
        }
        if hook.secret_env:
            secret = self.env[hook.secret_env].encode()
            headers[messages.SIGNATURE_HEADER] = messages.webhook_signature(secret, raw)
        return await self._post(url, raw, key, headers)

    # -- Slack with a bot token: post, then edit in place and reply in the thread --

    async def _slack_api(self, method: str, body: Mapping[str, Any], key: str) -> Attempt:
        token = self.env[str(self.config.slack_bot_token_env)]
        url = f"{self.config.slack_api_url}/{method}"
        attempt = await self._post_json(
            url,
            body,
            key,
            {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json; charset=utf-8",
            },
        )
        if attempt.outcome != DELIVERED:
            return attempt
        answer = attempt.result
        if answer.get("ok") is True:
            return attempt
        error = str(answer.get("error", "no ok in the answer"))
        outcome = RETRY if error in SLACK_TRANSIENT else FAILED
        return Attempt(outcome, attempt.status, attempt.body, attempt.retry_after_ms, answer)

    async def _slack_bot(self, target: str, n: Notification, page: SlackPage | None) -> Attempt:
        if n.action == TRIGGER or page is None:
            # A follow-up whose page this notifier never posted (sent before, folded into a
            # digest, or in webhook mode then) is posted as a message of its own.
            return await self._slack_api("chat.postMessage", messages.slack_post(n, target), n.id)
        edit = messages.slack_update(n, page.channel_id, page.ts, page.text)
        edited = await self._slack_api("chat.update", edit, n.id + "/update")
        if edited.outcome != DELIVERED:
            return edited
        reply = messages.slack_reply(n, page.channel_id, page.ts)
        replied = await self._slack_api("chat.postMessage", reply, n.id)
        return (
            replied
            if replied.outcome != DELIVERED
            else Attempt(DELIVERED, replied.status, replied.body, result=replied.result, messages=1)
        )

    # -- e-mail --

    def _sender(self) -> str:
        return str(self.config.email_from)

    async def _mail(self, message: Any) -> Attempt:
        smtp = self.config.smtp
        if smtp is None:
            return Attempt(FAILED, None, "no email.smtp configured")
        # Flattened here: with lines up to RFC 5322's 998 characters, long ids in headers stay
        # readable (aiosmtplib's own flattening folds them into encoded words at 78).
        data = message.as_bytes(policy=MAIL_POLICY)
        try:
            errors, reply = await aiosmtplib.send(
                data,
                sender=str(message["From"]),
                recipients=[str(message["To"])],
                hostname=smtp.host,
                port=smtp.port,
                use_tls=smtp.security == "tls",
                start_tls=smtp.security == "starttls",
                username=self.env.get(smtp.username_env) if smtp.username_env else None,
                password=self.env.get(smtp.password_env) if smtp.password_env else None,
                timeout=smtp.timeout_ms / 1000,
                cert_bundle=smtp.ca_file,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            worst = max((r.code for r in exc.recipients), default=550)
            return Attempt(classify_smtp(worst), worst, str(exc)[:BODY_KEPT])
        except aiosmtplib.SMTPResponseException as exc:
            return Attempt(classify_smtp(exc.code), exc.code, exc.message[:BODY_KEPT])
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
            return Attempt(RETRY, None, f"{type(exc).__name__}: {exc}"[:BODY_KEPT])
        if errors:  # some recipients refused: as a refusal of the worst of them
            worst = max(response.code for response in errors.values())
            return Attempt(classify_smtp(worst), worst, str(errors)[:BODY_KEPT])
        return Attempt(DELIVERED, 250, reply[:BODY_KEPT])


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


def _json(text: str) -> Mapping[str, Any]:
    if not text.startswith("{"):
        return {}
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}
