"""Local stand-ins for the services `escalator notify` delivers to, keeping to their documented
contracts (docs/notify.md, "What the receivers must answer"), plus a real SMTP server.

- PagerDuty Events API v2, `POST /v2/enqueue`: 202 `{"status": "success", "message":
  "Event processed", "dedup_key": …}`; 400 `{"status": "invalid event", "message": "Event
  object is invalid", "errors": [...]}` for an event that breaks the rules (routing key,
  event_action, dedup_key ≤ 255, a trigger's summary/source/severity); 429 when told to.
- Slack incoming webhook, `POST /services/<hook>`: 200 with the body `ok`; 400
  `invalid_payload` without `text`; 429 with `Retry-After`, or 5xx, when told to.
- Slack Web API, `POST /api/chat.postMessage` and `/api/chat.update` with `Authorization:
  Bearer <token>`: HTTP 200 and `{"ok": true, "channel": <channel id>, "ts": …}`, or
  `{"ok": false, "error": …}` (`invalid_auth`, `channel_not_found`, `message_not_found`,
  `cant_update_message`); chat.update takes the channel *id* and the message's ts.
- A webhook receiver, `POST /hooks/<name>`: records the body and headers; 200.
- SMTP: aiosmtpd with STARTTLS (a certificate made for the test) and AUTH LOGIN/PLAIN.

Every request is kept in `requests`; `fail(path_prefix, status, until=…, retry_after=…)`
makes a path answer `status` until a monotonic time (or for good).
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # monotonic

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Failure:
    status: int
    until: float | None  # monotonic; None: for good
    retry_after: str | None = None
    body: str = "unavailable"


@dataclass
class Receivers:
    """One aiohttp server answering as PagerDuty, Slack (webhooks and Web API) and webhooks."""

    bot_token: str = "xoxb-test-token"
    requests: list[Received] = field(default_factory=list)
    failures: dict[str, Failure] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)  # path prefix → seconds per answer
    messages: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    runner: web.AppRunner | None = None
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/v2/enqueue", self.pagerduty)
        app.router.add_post("/services/{hook:.*}", self.slack_webhook)
        app.router.add_post("/api/{method}", self.slack_api)
        app.router.add_post("/hooks/{name}", self.webhook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def fail(
        self,
        prefix: str,
        status: int,
        seconds: float | None = None,
        retry_after: str | None = None,
        body: str = "unavailable",
    ) -> None:
        until = None if seconds is None else time.monotonic() + seconds
        self.failures[prefix] = Failure(status, until, retry_after, body)

    def at(self, prefix: str) -> list[Received]:
        return [r for r in self.requests if r.path.startswith(prefix)]

    async def _record(self, request: web.Request) -> tuple[Received, web.Response | None]:
        body = await request.read()
        for prefix, seconds in self.delays.items():
            if request.path.startswith(prefix):
                await asyncio.sleep(seconds)
        received = Received(request.path, dict(request.headers), body, time.monotonic())
        for prefix, failure in self.failures.items():
            if request.path.startswith(prefix) and (
                failure.until is None or time.monotonic() < failure.until
            ):
                headers = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                received.headers["x-test-answer"] = str(failure.status)
                self.requests.append(received)
                return received, web.Response(
                    status=failure.status, text=failure.body, headers=headers
                )
        self.requests.append(received)
        return received, None

    # -- PagerDuty Events API v2 --

    async def pagerduty(self, request: web.Request) -> web.Response:
        received, failed = await self._record(request)
        if failed is not None:
            return failed
        try:
            event = received.json
        except orjson.JSONDecodeError:
            return _pd_invalid(["Event object is not valid JSON"])
        errors = []
        if not isinstance(event.get("routing_key"), str) or not event["routing_key"]:
            errors.append("'routing_key' is missing or blank")
        if event.get("event_action") not in ("trigger", "acknowledge", "resolve"):
            errors.append("'event_action' is invalid")
        dedup = event.get("dedup_key")
        if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
            errors.append("'dedup_key' is longer than 255 characters")
        if event.get("event_action") == "trigger":
            payload = event.get("payload") or {}
            for key in ("summary", "source", "severity"):
                if not payload.get(key):
                    errors.append(f"'payload.{key}' is missing or blank")
            if payload.get("severity") not in (None, "critical", "error", "warning", "info"):
                errors.append("'payload.severity' is invalid")
        elif not dedup:
            errors.append("'dedup_key' is required for acknowledge and resolve")
        if errors:
            received.headers["x-test-answer"] = "400"
            return _pd_invalid(errors)
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": dedup},
            status=202,
        )

    # -- Slack --

    async def slack_webhook(self, request: web.Request) -> web.Response:
        received, failed = await self._record(request)
        if failed is not None:
            return failed
        try:
            doc = received.json
        except orjson.JSONDecodeError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(doc, dict) or not (doc.get("text") or doc.get("blocks")):
            return web.Response(status=400, text="invalid_payload")
        return web.Response(status=200, text="ok")

    async def slack_api(self, request: web.Request) -> web.Response:
        received, failed = await self._record(request)
        if failed is not None:
            return failed
        if request.headers.get("Authorization") != f"Bearer {self.bot_token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        doc = received.json
        method = request.match_info["method"]
        channel = str(doc.get("channel", ""))
        if not channel:
            return web.json_response({"ok": False, "error": "channel_not_found"})
        channel_id = channel if channel.startswith("C") else "C" + channel_code(channel)
        if method == "chat.postMessage":
            if not doc.get("text"):
                return web.json_response({"ok": False, "error": "no_text"})
            thread = doc.get("thread_ts")
            if thread is not None and (channel_id, thread) not in self.messages:
                return web.json_response({"ok": False, "error": "thread_not_found"})
            ts = f"1790000000.{next(self._ts):06d}"
            self.messages[(channel_id, ts)] = {"text": doc["text"], "thread_ts": thread}
            return web.json_response({"ok": True, "channel": channel_id, "ts": ts})
        if method == "chat.update":
            if not channel.startswith("C"):
                return web.json_response({"ok": False, "error": "channel_not_found"})
            ts = str(doc.get("ts", ""))
            if (channel_id, ts) not in self.messages:
                return web.json_response({"ok": False, "error": "message_not_found"})
            self.messages[(channel_id, ts)]["text"] = doc.get("text")
            self.messages[(channel_id, ts)]["edited"] = True
            return web.json_response(
                {"ok": True, "channel": channel_id, "ts": ts, "text": doc.get("text")}
            )
        return web.json_response({"ok": False, "error": "unknown_method"})

    # -- webhooks --

    async def webhook(self, request: web.Request) -> web.Response:
        _, failed = await self._record(request)
        if failed is not None:
            return failed
        return web.Response(status=200, text="thanks")

    def channel_id(self, name: str) -> str:
        return "C" + channel_code(name)


def channel_code(name: str) -> str:
    return "".join(f"{ord(c):02X}" for c in name.lstrip("#"))[:10]


def _pd_invalid(errors: list[str]) -> web.Response:
    return web.json_response(
        {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
        status=400,
    )


# --- SMTP ------------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost (openssl, on this machine)."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: Message
    tls: bool
    user: str | None
    at: float


class SmtpServer:
    """aiosmtpd on a free port: STARTTLS required before AUTH, AUTH required before MAIL."""

    def __init__(self, directory: Path, user: str = "escalator", password: str = "s3cret"):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        self.cert, key = make_certificate(directory)
        self.user, self.password = user, password
        self.mails: list[Mail] = []
        self.refuse: Callable[[list[str]], str | None] = lambda rcpts: None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(key))
        outer = self

        class Handler:
            async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
                self, server: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                answer = outer.refuse([address])
                if answer:
                    return answer
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(  # noqa: N802
                self, server: Any, session: Any, envelope: Any
            ) -> str:
                outer.mails.append(
                    Mail(
                        envelope.mail_from,
                        list(envelope.rcpt_tos),
                        message_from_bytes(envelope.original_content or envelope.content),
                        session.ssl is not None,
                        session.auth_data.decode() if session.auth_data else None,
                        time.monotonic(),
                    )
                )
                return "250 Message accepted for delivery"

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> Any:
            ok = data.login.decode() == outer.user and data.password.decode() == outer.password
            return AuthResult(success=ok, auth_data=data.login if ok else None)

        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=_free_port(),
            tls_context=context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=authenticate,
        )

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


async def wait_for(
    condition: Callable[[], bool], timeout: float, what: str, step: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(step)
