"""notifier.yaml: where `escalator notify` delivers, validated strictly (file:line:field errors).

Secrets never appear in the file: every key ending in `_env` names an environment variable
(routing keys, Slack webhook URLs and the bot token, SMTP credentials, webhook signing secrets),
and a key that looks like a secret written inline is refused. `resolve` reads the variables;
`escalator notify check` reports any that are unset.

```yaml
retry: {attempts: 10, initial: 1s, max: 1m}        # per destination: override under it
storm: {max_messages: 10, window: 1m, quiet: 5s}   # Slack channels and mailboxes
http: {timeout: 10s}
pagerduty:
  url: https://events.pagerduty.com/v2/enqueue
  services:
    primary-oncall: {routing_key_env: PD_PRIMARY_ONCALL}
slack:
  api_url: https://slack.com/api                   # the bot token's Web API
  bot_token_env: SLACK_BOT_TOKEN                   # optional: edit pages in place
  channels:
    "#support-l1": {webhook_url_env: SLACK_WEBHOOK_SUPPORT_L1}
    "#incidents": {bot: true}
email:
  from: escalator@example.com
  smtp: {host: smtp.example.com, port: 587, security: starttls,
         username_env: SMTP_USERNAME, password_env: SMTP_PASSWORD}
webhooks:
  ops-bridge: {url: https://ops.example.com/escalator, secret_env: OPS_BRIDGE_SECRET}
people:                                            # for `direct` pages: a person's contacts
  alice: ["email:alice@example.com", "pagerduty:primary-oncall"]
  "team:frontline": ["slack:#support-l1"]
```
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from escalator.config.policy_file import _Node
from escalator.domain.notify.notification import (
    CHANNEL_TYPES,
    DIRECT,
    EMAIL,
    PAGERDUTY,
    SLACK,
    WEBHOOK,
    Notification,
    channel_target,
    channel_type,
)
from escalator.domain.notify.retry import RetryPolicy
from escalator.domain.notify.storm import StormRule
from escalator.domain.policy import Policy
from escalator.domain.schedules import schedule_name
from escalator.errors import ConfigError

DEFAULT_PAGERDUTY_URL: Final = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_SLACK_API_URL: Final = "https://slack.com/api"
DEFAULT_HTTP_TIMEOUT_MS: Final = 10_000
DEFAULT_SMTP_TIMEOUT_MS: Final = 30_000
PD_SEVERITIES: Final = ("critical", "error", "warning", "info")
SMTP_SECURITY: Final = ("starttls", "tls", "none")
# Keys that would hold a secret inline: refused, with the `_env` key to use instead.
_INLINE_SECRETS: Final = {
    "routing_key": "routing_key_env",
    "webhook_url": "webhook_url_env",
    "bot_token": "bot_token_env",
    "token": "bot_token_env",
    "password": "password_env",
    "username": "username_env",
    "secret": "secret_env",
}


@dataclass(frozen=True, slots=True)
class PagerDutyService:
    name: str
    routing_key_env: str
    severity: str = "critical"  # when the notification's subject names no P1–P4
    retry: RetryPolicy | None = None


@dataclass(frozen=True, slots=True)
class SlackChannel:
    name: str  # as the policy writes it: `#room`, or a channel id
    webhook_url_env: str | None = None  # incoming-webhook mode
    bot: bool = False  # chat.postMessage / chat.update with the bot token
    retry: RetryPolicy | None = None


@dataclass(frozen=True, slots=True)
class Smtp:
    host: str
    port: int = 587
    security: str = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    timeout_ms: int = DEFAULT_SMTP_TIMEOUT_MS
    ca_file: str | None = None  # CA bundle to verify the server's certificate (default: system)


@dataclass(frozen=True, slots=True)
class Webhook:
    name: str
    url: str | None = None
    url_env: str | None = None
    secret_env: str | None = None
    retry: RetryPolicy | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """One destination of a notification: its channel (`slack:#room`, …) and type."""

    channel: str
    kind: str


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    file: str = "<notifier>"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    storm: StormRule = field(default_factory=StormRule)
    http_timeout_ms: int = DEFAULT_HTTP_TIMEOUT_MS
    pagerduty_url: str = DEFAULT_PAGERDUTY_URL
    pagerduty: Mapping[str, PagerDutyService] = field(default_factory=dict)
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_bot_token_env: str | None = None
    slack: Mapping[str, SlackChannel] = field(default_factory=dict)
    email_from: str | None = None
    smtp: Smtp | None = None
    webhooks: Mapping[str, Webhook] = field(default_factory=dict)
    people: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    # -- routing --

    def routes(self, n: Notification) -> tuple[list[Route], list[str]]:
        """Where `n` goes, and why any part of it cannot go anywhere (a message each)."""
        # `direct`, or a policy channel naming a person or team (`team:…`, `user:…`): their
        # contacts under people:.
        person = n.recipient if n.channel == DIRECT else n.channel
        personal = n.channel == DIRECT or (
            channel_type(n.channel) is None and n.channel.partition(":")[0] in ("team", "user")
        )
        channels = self.people.get(person, ()) if personal else (n.channel,)
        if personal and not channels:
            return [], [f"{person!r} has no contacts under people: in {self.file}"]
        routes, problems = [], []
        for channel in channels:
            problem = self.unroutable(channel)
            if problem:
                problems.append(problem)
            else:
                routes.append(Route(channel, str(channel_type(channel))))
        return routes, problems

    def unroutable(self, channel: str) -> str | None:
        """Why `channel` has no destination in this file; None when it has one."""
        kind, target = channel_type(channel), channel_target(channel)
        if kind is None:
            return f"{channel!r} is not a channel escalator notify delivers to"
        if kind == PAGERDUTY and target not in self.pagerduty:
            return f"{channel}: no pagerduty.services.{target} in {self.file}"
        if kind == SLACK and target not in self.slack and self.slack_bot_token_env is None:
            return f"{channel}: no slack.channels entry in {self.file} and no bot token"
        if kind == EMAIL and self.smtp is None:
            return f"{channel}: no email.smtp in {self.file}"
        if kind == WEBHOOK and target not in self.webhooks:
            return f"{channel}: no webhooks.{target} in {self.file}"
        return None

    def retry_for(self, channel: str) -> RetryPolicy:
        kind, target = channel_type(channel), channel_target(channel)
        override: RetryPolicy | None = None
        if kind == PAGERDUTY and target in self.pagerduty:
            override = self.pagerduty[target].retry
        elif kind == SLACK and target in self.slack:
            override = self.slack[target].retry
        elif kind == WEBHOOK and target in self.webhooks:
            override = self.webhooks[target].retry
        return override or self.retry

    def slack_mode(self, target: str) -> str:
        """`webhook` or `bot` for a Slack channel."""
        entry = self.slack.get(target)
        if entry is not None and entry.webhook_url_env is not None and not entry.bot:
            return "webhook"
        return "bot"

    def env_names(self) -> list[tuple[str, str]]:
        """(where in the file, variable) for every secret the file names."""
        names: list[tuple[str, str]] = []
        for s in self.pagerduty.values():
            names.append((f"pagerduty.services.{s.name}.routing_key_env", s.routing_key_env))
        if self.slack_bot_token_env:
            names.append(("slack.bot_token_env", self.slack_bot_token_env))
        for c in self.slack.values():
            if c.webhook_url_env:
                names.append((f"slack.channels.{c.name}.webhook_url_env", c.webhook_url_env))
        if self.smtp is not None:
            for key, var in (
                ("username_env", self.smtp.username_env),
                ("password_env", self.smtp.password_env),
            ):
                if var:
                    names.append((f"email.smtp.{key}", var))
        for w in self.webhooks.values():
            if w.url_env:
                names.append((f"webhooks.{w.name}.url_env", w.url_env))
            if w.secret_env:
                names.append((f"webhooks.{w.name}.secret_env", w.secret_env))
        return names

    def missing_env(self, env: Mapping[str, str]) -> list[str]:
        """One message per secret whose variable is unset or empty, or (a `*url_env`) does not
        hold an http(s) URL with a host. The messages never quote a variable's value."""
        problems = []
        for where, var in self.env_names():
            value = env.get(var)
            if not value:
                problems.append(f"{self.file}: {where}: environment variable {var} is not set")
            elif where.endswith("url_env") and not _is_http_url(value):
                problems.append(
                    f"{self.file}: {where}: environment variable {var} is not an http(s) URL "
                    "with a host"
                )
        return problems


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not any(c.isspace() for c in value.strip())
    )


# --- loading -----------------------------------------------------------------------------------


def load_notifier(path: str | Path) -> NotifierConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read notifier file: {exc.strerror}", file=str(path)) from None
    return parse_notifier(text, str(path))


def parse_notifier(text: str, file: str = "<notifier>") -> NotifierConfig:
    try:
        data = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"not valid YAML: {problem}", file=file, line=line) from None
    root = _Node({} if data is None else data, "", 1, file)
    top = root.mapping(
        ("retry", "storm", "http", "pagerduty", "slack", "email", "webhooks", "people")
    )
    retry = _retry(top["retry"]) if "retry" in top else RetryPolicy()
    storm = _storm(top["storm"]) if "storm" in top else StormRule()
    http_timeout = DEFAULT_HTTP_TIMEOUT_MS
    if "http" in top:
        http = top["http"].mapping(("timeout",))
        if "timeout" in http:
            http_timeout = http["timeout"].duration()
    config = NotifierConfig(file=file, retry=retry, storm=storm, http_timeout_ms=http_timeout)
    fields: dict[str, object] = {}
    if "pagerduty" in top:
        fields.update(_pagerduty(top["pagerduty"]))
    if "slack" in top:
        fields.update(_slack(top["slack"]))
    if "email" in top:
        fields.update(_email(top["email"]))
    if "webhooks" in top:
        fields["webhooks"] = _webhooks(top["webhooks"])
    config = replace(config, **fields)  # type: ignore[arg-type]
    if "people" in top:
        config = replace(config, people=_people(top["people"], config))
    return config


def _no_inline_secrets(node: _Node) -> None:
    if isinstance(node.value, dict):
        for key in node.value:
            if key in _INLINE_SECRETS:
                raise node.child(key).error(
                    f"secrets are never written in the file: use {_INLINE_SECRETS[key]} "
                    "with the name of an environment variable"
                )


def _env_name(node: _Node) -> str:
    text = node.text()
    if not text.replace("_", "").isalnum() or text[0].isdigit():
        raise node.error(f"{text!r} is not an environment variable name (e.g. PD_ROUTING_KEY)")
    return text


def _retry(node: _Node) -> RetryPolicy:
    fields = node.mapping(("attempts", "initial", "max"))
    attempts = RetryPolicy().attempts
    if "attempts" in fields:
        value = fields["attempts"].value
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise fields["attempts"].error("expected a whole number of attempts, at least 1")
        attempts = value
    initial = fields["initial"].duration() if "initial" in fields else RetryPolicy().initial_ms
    most = fields["max"].duration() if "max" in fields else max(initial, RetryPolicy().max_ms)
    if most < initial:
        raise fields["max"].error("max must not be shorter than initial")
    return RetryPolicy(attempts=attempts, initial_ms=initial, max_ms=most)


def _storm(node: _Node) -> StormRule:
    fields = node.mapping(("max_messages", "window", "quiet"))
    rule = StormRule()
    count = rule.max_messages
    if "max_messages" in fields:
        value = fields["max_messages"].value
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise fields["max_messages"].error("expected a whole number, at least 2")
        count = value
    window = fields["window"].duration() if "window" in fields else rule.window_ms
    quiet = fields["quiet"].duration() if "quiet" in fields else rule.quiet_ms
    return StormRule(max_messages=count, window_ms=window, quiet_ms=quiet)


def _url(node: _Node) -> str:
    text = node.text()
    if not text.startswith(("http://", "https://")):
        raise node.error(f"{text!r} is not an http(s) URL")
    return text


def _pagerduty(node: _Node) -> dict[str, object]:
    fields = node.mapping(("url", "services"))
    result: dict[str, object] = {}
    if "url" in fields:
        result["pagerduty_url"] = _url(fields["url"])
    services: dict[str, PagerDutyService] = {}
    if "services" in fields:
        for name, item in _entries(fields["services"]):
            _no_inline_secrets(item)
            f = item.mapping(
                ("routing_key_env", "severity", "retry"), required=("routing_key_env",)
            )
            services[name] = PagerDutyService(
                name=name,
                routing_key_env=_env_name(f["routing_key_env"]),
                severity=f["severity"].choice(PD_SEVERITIES) if "severity" in f else "critical",
                retry=_retry(f["retry"]) if "retry" in f else None,
            )
    result["pagerduty"] = services
    return result


def _slack(node: _Node) -> dict[str, object]:
    _no_inline_secrets(node)
    fields = node.mapping(("api_url", "bot_token_env", "channels"))
    result: dict[str, object] = {}
    if "api_url" in fields:
        result["slack_api_url"] = _url(fields["api_url"]).rstrip("/")
    if "bot_token_env" in fields:
        result["slack_bot_token_env"] = _env_name(fields["bot_token_env"])
    channels: dict[str, SlackChannel] = {}
    if "channels" in fields:
        for name, item in _entries(fields["channels"]):
            _no_inline_secrets(item)
            f = item.mapping(("webhook_url_env", "bot", "retry"))
            bot = False
            if "bot" in f:
                if not isinstance(f["bot"].value, bool):
                    raise f["bot"].error("expected true or false")
                bot = bool(f["bot"].value)
            hook = _env_name(f["webhook_url_env"]) if "webhook_url_env" in f else None
            if hook is None and not bot:
                raise item.error("give webhook_url_env (incoming webhook) or bot: true")
            if hook is not None and bot:
                raise item.error("webhook_url_env and bot: true are two modes; choose one")
            if bot and "bot_token_env" not in fields:
                raise f["bot"].error("bot: true needs slack.bot_token_env")
            channels[name] = SlackChannel(
                name, hook, bot, _retry(f["retry"]) if "retry" in f else None
            )
    result["slack"] = channels
    return result


def _email(node: _Node) -> dict[str, object]:
    fields = node.mapping(("from", "smtp"), required=("from", "smtp"))
    sender = fields["from"].text()
    if "@" not in sender:
        raise fields["from"].error(f"{sender!r} is not an e-mail address")
    smtp_node = fields["smtp"]
    _no_inline_secrets(smtp_node)
    f = smtp_node.mapping(
        ("host", "port", "security", "username_env", "password_env", "timeout", "ca_file"),
        required=("host",),
    )
    security = f["security"].choice(SMTP_SECURITY) if "security" in f else "starttls"
    port = {"starttls": 587, "tls": 465, "none": 25}[security]
    if "port" in f:
        value = f["port"].value
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise f["port"].error("expected a port number")
        port = value
    user = _env_name(f["username_env"]) if "username_env" in f else None
    password = _env_name(f["password_env"]) if "password_env" in f else None
    if (user is None) != (password is None):
        raise smtp_node.error("username_env and password_env go together")
    smtp = Smtp(
        host=f["host"].text(),
        port=port,
        security=security,
        username_env=user,
        password_env=password,
        timeout_ms=f["timeout"].duration() if "timeout" in f else DEFAULT_SMTP_TIMEOUT_MS,
        ca_file=f["ca_file"].text() if "ca_file" in f else None,
    )
    return {"email_from": sender, "smtp": smtp}


def _webhooks(node: _Node) -> dict[str, Webhook]:
    hooks: dict[str, Webhook] = {}
    for name, item in _entries(node):
        _no_inline_secrets(item)
        f = item.mapping(("url", "url_env", "secret_env", "retry"))
        if ("url" in f) == ("url_env" in f):
            raise item.error("give the receiver's url, or url_env when the URL is a secret")
        hooks[name] = Webhook(
            name=name,
            url=_url(f["url"]) if "url" in f else None,
            url_env=_env_name(f["url_env"]) if "url_env" in f else None,
            secret_env=_env_name(f["secret_env"]) if "secret_env" in f else None,
            retry=_retry(f["retry"]) if "retry" in f else None,
        )
    return hooks


def _people(node: _Node, config: NotifierConfig) -> dict[str, tuple[str, ...]]:
    people: dict[str, tuple[str, ...]] = {}
    for name, item in _entries(node):
        contacts = []
        for contact in item.items() if isinstance(item.value, list) else [item]:
            channel = contact.text()
            if channel_type(channel) not in CHANNEL_TYPES or not channel_target(channel):
                raise contact.error(
                    f"{channel!r} is not a contact; use slack:#room, email:a@b, "
                    "pagerduty:<service> or webhook:<name>"
                )
            problem = config.unroutable(channel)
            if problem:
                raise contact.error(problem.partition(": ")[2] or problem)
            contacts.append(channel)
        if not contacts:
            raise item.error("a person needs at least one contact")
        people[name] = tuple(contacts)
    return people


def _entries(node: _Node) -> list[tuple[str, _Node]]:
    if not isinstance(node.value, dict):
        raise node.error("expected a mapping of names")
    return [(str(key), node.child(key)) for key in node.value]


# --- against a policy ---------------------------------------------------------------------------


def coverage(config: NotifierConfig, policy: Policy) -> list[str]:
    """What the policy may page that this file cannot deliver: a channel without a destination,
    or someone paged `direct` (a tier without channels, an on-call level naming only schedules)
    without contacts under `people:`."""
    problems: list[str] = []
    channels: list[str] = []
    direct: list[str] = []

    def people_of(recipient: str) -> list[str]:
        name = schedule_name(recipient)
        if name is None:
            return [recipient]
        found = policy.schedules.get(name)
        if found is None:
            return []
        return [p for layer in found.layers for p in layer.rotation.participants]

    for tier in policy.tiers:
        channels.extend(tier.channels)
        if not tier.channels:
            for recipient in (tier.owner, tier.backup):
                if recipient:
                    direct.extend(people_of(recipient))
    for level in policy.alerts.levels:
        named = [n for n in level.notify if schedule_name(n) is None]
        channels.extend(named)
        if not named:
            for entry in level.notify:
                direct.extend(people_of(entry))
    for channel in dict.fromkeys(channels):
        if channel.partition(":")[0] in ("team", "user"):
            direct.append(channel)  # a person or team as a channel: their contacts
            continue
        problem = config.unroutable(channel)
        if problem:
            problems.append(f"policy channel {problem}")
    for person in dict.fromkeys(direct):
        if person not in config.people:
            problems.append(
                f"{person!r} is paged directly by the policy but has no contacts under "
                f"people: in {config.file}"
            )
    return problems
