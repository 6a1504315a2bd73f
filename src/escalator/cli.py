"""The `escalator` command line (click: composable sub-commands, env-var backed options)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar
from zoneinfo import ZoneInfo

import click
import orjson

from escalator.adapters.cloudevents import parse_time
from escalator.config.policy_file import load_policy
from escalator.config.settings import KafkaSecurity, Settings
from escalator.domain.durations import format_duration
from escalator.errors import ConfigError, EscalatorError, InvalidEvent


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="escalator")
def main() -> None:
    """escalator: SLA escalation processor for support and operations teams."""


F = TypeVar("F", bound=Callable[..., Any])

# Every option default is read from here: config/settings.py is where defaults are defined.
DEFAULTS = Settings()


def _duration_default(ms: float) -> str:
    return format_duration(int(ms))


def _durations(**given: str) -> dict[str, int]:
    """Parse duration options (keyword: option name without dashes, underscores for
    hyphens) into milliseconds; a bad one is refused naming its option."""
    from escalator.domain.durations import DurationError, parse_duration

    parsed = {}
    for name, text in given.items():
        try:
            parsed[name] = parse_duration(text)
        except DurationError as exc:
            hint = "--" + name.replace("_", "-")
            raise click.BadParameter(str(exc), param_hint=hint) from None
    return parsed


def policy_option(help_text: str) -> Callable[[F], F]:
    """`--policy FILE` ([ESCALATOR_POLICY], default the built-in example) for the commands
    that read the policy a worker would."""
    return click.option(
        "--policy",
        "policy_file",
        envvar="ESCALATOR_POLICY",
        type=click.Path(dir_okay=False, path_type=Path),
        default=str(DEFAULTS.policy_file),
        show_default="the built-in example policy",
        help=help_text,
    )


def log_options(command: F) -> F:
    """--log-level and --log-format, as every long-running command takes them."""
    level = click.option(
        "--log-level",
        envvar="ESCALATOR_LOG_LEVEL",
        default=DEFAULTS.log_level,
        show_default=True,
        type=click.Choice(["debug", "info", "warning", "error"]),
        help="[ESCALATOR_LOG_LEVEL]",
    )
    form = click.option(
        "--log-format",
        envvar="ESCALATOR_LOG_FORMAT",
        default=DEFAULTS.log_format,
        show_default=True,
        type=click.Choice(["text", "json"]),
        help="[ESCALATOR_LOG_FORMAT]",
    )
    return level(form(command))


def store_options(store_help: str, data_dir_help: str) -> Callable[[F], F]:
    """--store and --data-dir, with what they hold for the command."""

    def decorate(command: F) -> F:
        store = click.option(
            "--store",
            envvar="ESCALATOR_STORE",
            type=click.Choice(["rocksdb", "memory"]),
            default=DEFAULTS.store,
            show_default=True,
            help=f"{store_help} [ESCALATOR_STORE].",
        )
        data_dir = click.option(
            "--data-dir",
            envvar="ESCALATOR_DATA_DIR",
            type=click.Path(path_type=Path),
            default=str(DEFAULTS.data_dir),
            show_default=True,
            help=f"{data_dir_help} [ESCALATOR_DATA_DIR].",
        )
        return store(data_dir(command))

    return decorate


def kafka_options(func: F) -> F:
    """Options every Kafka-facing command shares; each has an ESCALATOR_* variable."""
    options = [
        click.option(
            "--bootstrap-servers",
            envvar=["ESCALATOR_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"],
            default=DEFAULTS.bootstrap_servers,
            show_default=True,
            help="Kafka bootstrap servers [env ESCALATOR_BOOTSTRAP_SERVERS].",
        ),
        click.option(
            "--app-id",
            envvar="ESCALATOR_APP_ID",
            default=DEFAULTS.app_id,
            show_default=True,
            help="Consumer group and table prefix [ESCALATOR_APP_ID].",
        ),
        click.option(
            "--topic-prefix",
            envvar="ESCALATOR_TOPIC_PREFIX",
            default=DEFAULTS.topic_prefix,
            help="Prefix for every topic name [ESCALATOR_TOPIC_PREFIX].",
        ),
        click.option(
            "--partitions",
            envvar="ESCALATOR_PARTITIONS",
            type=click.IntRange(1),
            default=DEFAULTS.partitions,
            show_default=True,
            help="Partitions of escalator's topics [ESCALATOR_PARTITIONS].",
        ),
        click.option(
            "--replication",
            envvar="ESCALATOR_REPLICATION",
            type=click.IntRange(1),
            default=DEFAULTS.replication,
            show_default=True,
            help="Replication factor of topics and changelogs [ESCALATOR_REPLICATION].",
        ),
        click.option(
            "--min-insync-replicas",
            envvar="ESCALATOR_MIN_INSYNC_REPLICAS",
            type=click.IntRange(0),
            default=DEFAULTS.min_insync_replicas,
            show_default=True,
            help="min.insync.replicas of the topics escalator creates; 0: 2 when the "
            "replication is 3 or more, else the broker's default [ESCALATOR_MIN_INSYNC_REPLICAS].",
        ),
        click.option(
            "--security-protocol",
            envvar="ESCALATOR_SECURITY_PROTOCOL",
            type=click.Choice(["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"]),
            default=DEFAULTS.security.protocol,
            show_default=True,
            help="Kafka security protocol [ESCALATOR_SECURITY_PROTOCOL].",
        ),
        click.option(
            "--sasl-mechanism",
            envvar="ESCALATOR_SASL_MECHANISM",
            type=click.Choice(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]),
            help="SASL mechanism [ESCALATOR_SASL_MECHANISM].",
        ),
        click.option(
            "--sasl-username",
            envvar="ESCALATOR_SASL_USERNAME",
            help="SASL user [ESCALATOR_SASL_USERNAME].",
        ),
        click.option(
            "--sasl-password",
            envvar="ESCALATOR_SASL_PASSWORD",
            help="SASL password; prefer the env variable [ESCALATOR_SASL_PASSWORD].",
        ),
        click.option(
            "--ssl-cafile",
            envvar="ESCALATOR_SSL_CAFILE",
            type=click.Path(dir_okay=False),
            help="CA bundle for TLS [ESCALATOR_SSL_CAFILE].",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def settings_from(**kw: Any) -> Settings:
    """Build Settings from the shared Kafka options plus any command-specific ones."""
    security = KafkaSecurity(
        protocol=kw.pop("security_protocol"),
        sasl_mechanism=kw.pop("sasl_mechanism"),
        username=kw.pop("sasl_username"),
        password=kw.pop("sasl_password"),
        cafile=kw.pop("ssl_cafile"),
    )
    return Settings(security=security, **kw)


def aggregate_options(command: Any) -> Any:
    """The escalator.metrics windows: the worker's, and simulate's to reproduce them."""
    options = [
        click.option(
            "--aggregate-windows",
            envvar="ESCALATOR_AGGREGATE_WINDOWS",
            default=",".join(period.name for period in DEFAULTS.aggregates.windows),
            show_default=True,
            help="Windows of the per-group aggregates on escalator.metrics, comma-separated "
            "durations [ESCALATOR_AGGREGATE_WINDOWS].",
        ),
        click.option(
            "--compliance-period",
            envvar="ESCALATOR_COMPLIANCE_PERIOD",
            default=DEFAULTS.aggregates.compliance.name,
            show_default=True,
            help="Period of the per-customer SLA compliance records: 'month' or a duration "
            "[ESCALATOR_COMPLIANCE_PERIOD].",
        ),
        click.option(
            "--aggregate-grace",
            envvar="ESCALATOR_AGGREGATE_GRACE",
            default=_duration_default(DEFAULTS.aggregates.grace_ms),
            show_default=True,
            help="How long a window waits for late facts before it is published "
            "[ESCALATOR_AGGREGATE_GRACE].",
        ),
        click.option(
            "--aggregate-retention",
            envvar="ESCALATOR_AGGREGATE_RETENTION",
            default=_duration_default(DEFAULTS.aggregates.retention_ms),
            show_default=True,
            help="How long the fact lane keeps a quiet state: a metric group's or customer's "
            "compliance windows after the last closed, a customer's solve after its "
            "re-contact window [ESCALATOR_AGGREGATE_RETENTION].",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


# --- policy -----------------------------------------------------------------------------------


@main.group()
def policy() -> None:
    """Check and publish policy files."""


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def policy_check(file: Path) -> None:
    """Validate FILE; print a one-line summary, or the error with file, line and field."""
    loaded = _load_policy_or_exit(file)
    schedules = f", schedules {', '.join(loaded.schedules)}" if loaded.schedules else ""
    click.echo(
        f"{file}: ok — version {loaded.version}, {len(loaded.targets)} target rules, "
        f"{len(loaded.calendars)} calendars, tiers {' → '.join(t.name for t in loaded.tiers)}"
        f"{schedules}"
    )


@policy.command("apply")
@kafka_options
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def policy_apply(file: Path, **kw: Any) -> None:
    """Validate FILE and publish it: every running worker switches to it within a second.

    A file that does not validate is refused with the error, and the workers keep the version
    they have.
    """
    from escalator.runtime.policy_topic import publish

    _load_policy_or_exit(file)
    settings = settings_from(**kw)
    applied = asyncio.run(publish(settings, file.read_text(encoding="utf-8"), str(file)))
    click.echo(f"applied policy {applied.version} to {settings.topic('policy')}")


def _load_policy_or_exit(file: Path):  # type: ignore[no-untyped-def]
    """The policy in FILE; its warnings on stderr; exit status 2 with the error if invalid."""
    warnings: list[str] = []
    try:
        loaded = load_policy(file, warnings)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    return loaded


# --- schedules --------------------------------------------------------------------------------


@main.group()
def schedule() -> None:
    """Inspect on-call schedules (the policy's schedules: section)."""


@schedule.command("show")
@click.argument("name")
@click.option("--from", "start", required=True, help="Start of the range (RFC 3339).")
@click.option("--to", "end", required=True, help="End of the range, excluded (RFC 3339).")
@policy_option("Policy YAML whose schedules to read [ESCALATOR_POLICY].")
def schedule_show(name: str, start: str, end: str, policy_file: Path) -> None:
    """Print who is on call in schedule NAME from --from to --to: one shift per line, its start
    and end in UTC and in the schedule's time zone, then the person, or (nobody) in a gap.

    Overrides are not included: they arrive as events, which this command does not read.
    """
    from escalator.domain.schedules import EARLIEST_MS, LATEST_MS, shifts

    from_ms, to_ms = _instant(start, "--from"), _instant(end, "--to")
    if to_ms <= from_ms:
        raise click.BadParameter("must be after --from", param_hint="--to")
    for at_ms, hint in ((from_ms, "--from"), (to_ms, "--to")):
        if not EARLIEST_MS <= at_ms <= LATEST_MS:
            raise click.BadParameter("schedules answer for the years 1900 to 8999", param_hint=hint)
    loaded = _load_policy_or_exit(policy_file)
    found = loaded.schedules.get(name)
    if found is None:
        known = ", ".join(loaded.schedules)
        click.echo(
            f"error: schedule {name!r} is not defined in {policy_file}; "
            + (f"known: {known}" if known else "it defines no schedules"),
            err=True,
        )
        sys.exit(2)
    zone = ZoneInfo(found.timezone)
    width = max(25, len(found.timezone) + 8)  # 2026-03-09T09:00:00-04:00, or the heading
    click.echo(
        f"{'start (UTC)':20}  {'end (UTC)':20}  {f'start ({found.timezone})':{width}}  "
        f"{f'end ({found.timezone})':{width}}  on call"
    )
    for shift in shifts(found, from_ms, to_ms):
        click.echo(
            f"{_utc(shift.start_ms)}  {_utc(shift.end_ms)}  "
            f"{_local(shift.start_ms, zone):{width}}  {_local(shift.end_ms, zone):{width}}  "
            f"{shift.user or '(nobody)'}"
        )


def _instant(text: str, hint: str) -> int:
    try:
        return parse_time(text, hint)
    except InvalidEvent as exc:
        raise click.BadParameter(exc.message, param_hint=hint) from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _utc(at_ms: int) -> str:
    return (_EPOCH + timedelta(milliseconds=at_ms)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local(at_ms: int, zone: ZoneInfo) -> str:
    return (_EPOCH + timedelta(milliseconds=at_ms)).astimezone(zone).isoformat("T", "seconds")


# --- simulate ---------------------------------------------------------------------------------

# The worker's and simulate's: a ticket's id reuse and `expired_ticket` depend on it.
retention_option = click.option(
    "--retention",
    envvar="ESCALATOR_RETENTION",
    default=_duration_default(DEFAULTS.retention_ms),
    show_default=True,
    help="How long a solved/closed ticket's (resolved incident's) state is kept "
    "[ESCALATOR_RETENTION].",
)


@main.command()
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=str(DEFAULTS.policy_file),
    show_default="the built-in example policy",
    help="Policy YAML to apply.",
)
@click.option("--until", help="Fire every timer due up to this RFC 3339 instant.")
@click.option("--summary", is_flag=True, help="Print support figures (JSON) instead of events.")
@click.option(
    "--aggregates",
    is_flag=True,
    help="Print only the escalator.metrics records (windows closed by --until).",
)
@aggregate_options
@retention_option
@click.option(
    "--compare",
    "compare_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Backtest a second policy on the same events and print what changes.",
)
@click.option(
    "--outages",
    type=click.Choice(["auto", "derived", "recorded"]),
    default="auto",
    show_default=True,
    help="Where outages come from: derived from alerts as they are applied, or the "
    "escalator.outage records of a recording (tickets.events and monitoring.alerts as the "
    "workers consumed them); auto = recorded when the input holds such a record.",
)
@click.argument("events", type=click.File("rb"), default="-")
def simulate(
    policy_file: Path,
    until: str | None,
    summary: bool,
    aggregates: bool,
    aggregate_windows: str,
    compliance_period: str,
    aggregate_grace: str,
    aggregate_retention: str,
    retention: str,
    compare_file: Path | None,
    outages: str,
    events: IO[bytes],
) -> None:
    """Run the engine offline over EVENTS (JSON lines, '-' for stdin) and print its output.

    Each input line is a CloudEvent; input order is arrival order. A line arrives at its
    `arrivaltime` attribute, or else at its `time`. Output: one CloudEvent JSON per line, in
    emission order. Refused lines are reported on stderr with their reason.
    """
    from escalator.service import simulate as sim
    from escalator.service.summary import compare

    base_policy = _load_policy_or_exit(policy_file)
    until_ms = None
    if until is not None:
        try:
            until_ms = parse_time(until, "--until")
        except InvalidEvent as exc:
            raise click.BadParameter(exc.message, param_hint="--until") from None
    config = _aggregate_config(
        aggregate_windows, compliance_period, aggregate_grace, aggregate_retention
    )
    retention_ms = _durations(retention=retention)["retention"]
    lines = events.read().splitlines()
    result = sim.run(
        lines, base_policy, until_ms, aggregates=config, outages=outages, retention_ms=retention_ms
    )
    for letter in result.dead_letters:
        doc = orjson.loads(letter.value)
        click.echo(
            f"dead-letter: line {doc['source_offset']}: {doc['reason']}: {doc['message']}",
            err=True,
        )
    out = click.get_binary_stream("stdout")
    if compare_file is not None:
        other = sim.run(
            lines,
            _load_policy_or_exit(compare_file),
            until_ms,
            aggregates=config,
            outages=outages,
            retention_ms=retention_ms,
        )
        report = compare(result.summary, other.summary)
        out.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        return
    if summary:
        out.write(orjson.dumps(result.summary.report(), option=orjson.OPT_INDENT_2) + b"\n")
        return
    for emission in result.aggregates if aggregates else result.emissions:
        out.write(emission.value + b"\n")


# --- Kafka-facing commands -------------------------------------------------------------------


@main.group()
def topics() -> None:
    """Manage escalator's Kafka topics."""


@topics.command("create")
@kafka_options
@click.option(
    "--history-retention",
    envvar="ESCALATOR_HISTORY_RETENTION",
    default=_duration_default(DEFAULTS.history_retention_ms),
    show_default=True,
    help="How long the inputs, escalations, notifications and dead letters are kept "
    "[ESCALATOR_HISTORY_RETENTION].",
)
@click.option(
    "--evidence-retention",
    envvar="ESCALATOR_EVIDENCE_RETENTION",
    default=_duration_default(DEFAULTS.evidence_retention_ms),
    show_default=True,
    help="How long escalator.metrics (compliance and aggregate records) is kept "
    "[ESCALATOR_EVIDENCE_RETENTION].",
)
@click.option(
    "--fix",
    is_flag=True,
    help="Set the configs of existing topics that differ from what escalator needs "
    "(retention, timestamps, compaction; never partitions).",
)
def topics_create(history_retention: str, evidence_retention: str, fix: bool, **kw: Any) -> None:
    """Create every topic escalator uses; report existing topics whose settings differ
    (idempotent: existing topics are only changed with --fix)."""
    from escalator.runtime.topics import create_topics

    kept = _durations(history_retention=history_retention, evidence_retention=evidence_retention)
    settings = settings_from(
        history_retention_ms=kept["history_retention"],
        evidence_retention_ms=kept["evidence_retention"],
        **kw,
    )
    results = asyncio.run(create_topics(settings, fix=fix))
    for result in results:
        item = result.plan
        click.echo(
            f"{result.outcome:8} {item.name} ({item.partitions} partitions, "
            f"replication {settings.replication})"
        )
        for difference in result.differences:
            click.echo(f"         {difference.describe()}")
    unfixed = [
        d
        for result in results
        for d in result.differences
        if result.outcome == "differs" or not d.fixable
    ]
    if any(d.fixable for d in unfixed):
        # Failing is the point: a retention left at the broker's 7 days deletes the compliance
        # evidence a week later, and a deploy job that succeeds would hide it.
        click.echo(
            "error: existing topics differ from what escalator needs (above); run again with "
            "--fix to set their configs",
            err=True,
        )
        sys.exit(1)
    if unfixed:
        click.echo("warning: partition counts differ (above); --fix never changes them", err=True)


@main.command()
@kafka_options
@policy_option("Policy YAML [ESCALATOR_POLICY].")
@click.option(
    "--shadow-policy",
    "shadow_policy_file",
    envvar="ESCALATOR_SHADOW_POLICY",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also evaluate this policy on the same stream; its decisions go to "
    "escalations.shadow only [ESCALATOR_SHADOW_POLICY].",
)
@store_options(
    "Table store; memory replays the whole changelog at start",
    "RocksDB and worker state directory",
)
@click.option(
    "--web-bind",
    envvar="ESCALATOR_WEB_BIND",
    default=DEFAULTS.web_bind,
    show_default=True,
    help="Address of the HTTP port (/metrics, /health, ingest) [ESCALATOR_WEB_BIND].",
)
@click.option(
    "--web-port",
    envvar="ESCALATOR_WEB_PORT",
    type=int,
    default=DEFAULTS.web_port,
    show_default=True,
    help="HTTP port [ESCALATOR_WEB_PORT].",
)
@click.option(
    "--web-host",
    envvar="ESCALATOR_WEB_HOST",
    default=DEFAULTS.web_host,
    show_default=True,
    help="Host name other workers use to reach this one [ESCALATOR_WEB_HOST].",
)
@click.option(
    "--session-timeout",
    envvar="ESCALATOR_SESSION_TIMEOUT",
    default=_duration_default(DEFAULTS.session_timeout_s * 1000),
    show_default=True,
    help="Kafka group session timeout: how long a dead worker keeps its partitions "
    "[ESCALATOR_SESSION_TIMEOUT].",
)
@click.option(
    "--standby-replicas",
    envvar="ESCALATOR_STANDBY_REPLICAS",
    type=int,
    default=DEFAULTS.standby_replicas,
    show_default=True,
    help="Warm table copies on other workers [ESCALATOR_STANDBY_REPLICAS].",
)
@click.option(
    "--max-record-bytes",
    envvar="ESCALATOR_MAX_RECORD_BYTES",
    type=int,
    default=DEFAULTS.max_record_bytes,
    show_default=True,
    help="Larger inbound records are dead-lettered [ESCALATOR_MAX_RECORD_BYTES].",
)
@click.option(
    "--max-request-bytes",
    envvar="ESCALATOR_MAX_REQUEST_BYTES",
    type=int,
    default=DEFAULTS.max_request_bytes,
    show_default=True,
    help="Larger HTTP request bodies get 413 [ESCALATOR_MAX_REQUEST_BYTES].",
)
@click.option(
    "--http-token",
    envvar="ESCALATOR_HTTP_TOKEN",
    help="Bearer token required on ingest and admin endpoints; prefer the env variable "
    "[ESCALATOR_HTTP_TOKEN].",
)
@click.option(
    "--jira-webhook-secret",
    envvar="ESCALATOR_JIRA_WEBHOOK_SECRET",
    help="POST /webhooks/jira needs Jira's X-Hub-Signature made with this secret instead of "
    "the bearer token; prefer the env variable [ESCALATOR_JIRA_WEBHOOK_SECRET].",
)
@click.option(
    "--zendesk-signing-secret",
    envvar="ESCALATOR_ZENDESK_SIGNING_SECRET",
    help="POST /webhooks/zendesk needs Zendesk's X-Zendesk-Webhook-Signature made with this "
    "secret instead of the bearer token; prefer the env variable "
    "[ESCALATOR_ZENDESK_SIGNING_SECRET].",
)
@click.option(
    "--pagerduty-routing-keys",
    envvar="ESCALATOR_PAGERDUTY_ROUTING_KEYS",
    callback=lambda _ctx, _param, value: _routing_keys(value),
    help="PagerDuty routing keys the Events API v2 door accepts without the bearer token, "
    "each with the service it names: 'key=service,…'; prefer the env variable "
    "[ESCALATOR_PAGERDUTY_ROUTING_KEYS].",
)
@click.option(
    "--recontact-window",
    envvar="ESCALATOR_RECONTACT_WINDOW",
    default=_duration_default(DEFAULTS.recontact_window_ms),
    show_default=True,
    help="A new ticket of a customer for a service within this time after one was solved "
    "counts as a re-contact [ESCALATOR_RECONTACT_WINDOW].",
)
@aggregate_options
@retention_option
@log_options
def worker(
    policy_file: Path,
    shadow_policy_file: Path | None,
    session_timeout: str,
    retention: str,
    recontact_window: str,
    aggregate_windows: str,
    compliance_period: str,
    aggregate_grace: str,
    aggregate_retention: str,
    **kw: Any,
) -> None:
    """Run a stream worker: consume tickets.events, keep SLA state, emit escalations.

    Start as many as you have partitions; they share the work through the Kafka consumer
    group named by --app-id.
    """
    from escalator.runtime.main import run_worker

    _refuse_blank_secrets(kw)
    loaded = _load_policy_or_exit(policy_file)
    durations = _durations(
        session_timeout=session_timeout, retention=retention, recontact_window=recontact_window
    )
    aggregates = _aggregate_config(
        aggregate_windows, compliance_period, aggregate_grace, aggregate_retention
    )
    shadow = _load_policy_or_exit(shadow_policy_file) if shadow_policy_file else None
    settings = settings_from(
        policy_file=policy_file,
        shadow_policy_file=shadow_policy_file,
        session_timeout_s=durations["session_timeout"] / 1000,
        retention_ms=durations["retention"],
        recontact_window_ms=durations["recontact_window"],
        aggregates=aggregates,
        **kw,
    )
    if settings.pagerduty_routing_keys and not settings.http_token:
        # Without the token every door is open and any routing key names a service: the
        # listed keys would protect nothing, and a mistyped key would page a made-up service.
        raise click.UsageError(
            "ESCALATOR_PAGERDUTY_ROUTING_KEYS is set but ESCALATOR_HTTP_TOKEN is not: set the "
            "token (the routing keys are credentials only next to it)"
        )
    sys.exit(run_worker(settings, loaded, shadow))


WEBHOOK_SECRETS = (
    ("jira_webhook_secret", "--jira-webhook-secret", "ESCALATOR_JIRA_WEBHOOK_SECRET"),
    ("zendesk_signing_secret", "--zendesk-signing-secret", "ESCALATOR_ZENDESK_SIGNING_SECRET"),
)


def _refuse_blank_secrets(kw: dict[str, Any]) -> None:
    """A signing secret set but empty (or blank) stops the worker: click takes an empty
    variable as unset, which would open the door to the bearer token (or to anyone)."""
    for key, option, env in WEBHOOK_SECRETS:
        given = kw.get(key)
        raw = os.environ.get(env)
        if (given is not None and not given.strip()) or (
            given is None and raw is not None and not raw.strip()
        ):
            raise click.BadParameter(
                "is set but empty; give the webhook's secret or unset it",
                param_hint=f"{option} / {env}",
            )


def _routing_keys(text: str | None) -> dict[str, str]:
    from escalator.adapters.pagerduty import RoutingKeysError, parse_routing_keys

    try:
        return parse_routing_keys(text or "")
    except RoutingKeysError as exc:
        raise click.BadParameter(str(exc), param_hint="--pagerduty-routing-keys") from None


def _aggregate_config(windows: str, compliance: str, grace: str, retention: str) -> Any:
    from escalator.domain.aggregates import (
        AggregateConfig,
        AggregateError,
        parse_period,
        parse_periods,
    )

    durations = _durations(aggregate_grace=grace, aggregate_retention=retention)

    try:
        periods = parse_periods(windows)
    except AggregateError as exc:
        raise click.BadParameter(str(exc), param_hint="--aggregate-windows") from None
    try:
        period = parse_period(compliance)
    except AggregateError as exc:
        raise click.BadParameter(str(exc), param_hint="--compliance-period") from None
    try:
        return AggregateConfig(
            periods, period, durations["aggregate_grace"], durations["aggregate_retention"]
        )
    except AggregateError as exc:
        hint = "--aggregate-retention" if "retention" in str(exc) else "--aggregate-windows"
        raise click.BadParameter(str(exc), param_hint=hint) from None


# --- notify -----------------------------------------------------------------------------------


def notifier_option(command: Any) -> Any:
    return click.option(
        "--notifier",
        "notifier_file",
        envvar="ESCALATOR_NOTIFIER",
        type=click.Path(dir_okay=False, path_type=Path),
        default=str(DEFAULTS.notifier_file),
        show_default=True,
        help="notifier.yaml: destinations and people [ESCALATOR_NOTIFIER].",
    )(command)


def _load_notifier_or_exit(file: Path):  # type: ignore[no-untyped-def]
    from escalator.config.notifier_file import load_notifier

    try:
        return load_notifier(file)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@main.group(invoke_without_command=True)
@kafka_options
@notifier_option
@click.option(
    "--notify-app-id",
    envvar="ESCALATOR_NOTIFY_APP_ID",
    default=DEFAULTS.notify_app_id,
    show_default="<app id>-notify",
    help="The notifier's consumer group and table prefix [ESCALATOR_NOTIFY_APP_ID].",
)
@store_options("Store of the table of delivered ids", "RocksDB directory")
@click.option(
    "--web-bind",
    envvar="ESCALATOR_WEB_BIND",
    default=DEFAULTS.web_bind,
    show_default=True,
    help="Address of the HTTP port (/metrics, /health) [ESCALATOR_WEB_BIND].",
)
@click.option(
    "--web-port",
    "notify_web_port",
    envvar="ESCALATOR_NOTIFY_WEB_PORT",
    type=int,
    default=DEFAULTS.notify_web_port,
    show_default=True,
    help="The notifier's HTTP port [ESCALATOR_NOTIFY_WEB_PORT].",
)
@click.option(
    "--session-timeout",
    envvar="ESCALATOR_SESSION_TIMEOUT",
    default=_duration_default(DEFAULTS.session_timeout_s * 1000),
    show_default=True,
    help="Kafka group session timeout [ESCALATOR_SESSION_TIMEOUT].",
)
@click.option(
    "--max-in-flight",
    "notify_max_in_flight",
    envvar="ESCALATOR_NOTIFY_MAX_IN_FLIGHT",
    type=click.IntRange(1, 10_000),
    default=DEFAULTS.notify_max_in_flight,
    show_default=True,
    help="Deliveries sent and not yet recorded at once: the most a crash can repeat "
    "[ESCALATOR_NOTIFY_MAX_IN_FLIGHT].",
)
@click.option(
    "--retention",
    envvar="ESCALATOR_NOTIFY_RETENTION",
    default=_duration_default(DEFAULTS.notify_retention_ms),
    show_default=True,
    help="How long a delivered id is remembered [ESCALATOR_NOTIFY_RETENTION].",
)
@log_options
@click.pass_context
def notify(
    ctx: click.Context, /, notifier_file: Path, session_timeout: str, retention: str, **kw: Any
) -> None:
    """Deliver notification.requested events: PagerDuty, Slack, e-mail and webhooks.

    Reads the notifications topic with its own consumer group, delivers each notification to
    its destinations as notifier.yaml says (docs/notify.md), retries, dead-letters what cannot
    be delivered, and remembers what it delivered. `escalator notify check` validates the file.
    """
    if ctx.invoked_subcommand is not None:
        return
    from escalator.runtime.notify.main import run_notify

    config = _load_notifier_or_exit(notifier_file)
    durations = _durations(session_timeout=session_timeout, retention=retention)
    import os

    missing = config.missing_env(os.environ)
    if missing:
        for line in missing:
            click.echo(f"error: {line}", err=True)
        sys.exit(2)
    settings = settings_from(
        notifier_file=notifier_file,
        session_timeout_s=durations["session_timeout"] / 1000,
        notify_retention_ms=durations["retention"],
        **kw,
    )
    sys.exit(run_notify(settings, config))


@notify.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also check that everything this policy may page has a destination.",
)
@click.option(
    "--env/--no-env",
    "check_env",
    default=True,
    show_default=True,
    help="Check that every environment variable the file names is set.",
)
@click.pass_context
def notify_check(
    ctx: click.Context, /, file: Path | None, policy_file: Path | None, check_env: bool
) -> None:
    """Validate notifier.yaml (FILE, default --notifier / ESCALATOR_NOTIFIER): errors name the
    file, line and field; exit status 2 when anything is wrong."""
    import os

    from escalator.config.notifier_file import coverage

    file = file or Path(ctx.parent.params["notifier_file"] if ctx.parent else "notifier.yaml")
    config = _load_notifier_or_exit(file)
    problems = config.missing_env(os.environ) if check_env else []
    if policy_file is not None:
        problems += coverage(config, _load_policy_or_exit(policy_file))
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if problems:
        sys.exit(2)
    click.echo(
        f"{file}: ok — {len(config.pagerduty)} PagerDuty services, {len(config.slack)} Slack "
        f"channels{' (bot token)' if config.slack_bot_token_env else ''}, "
        f"{len(config.webhooks)} webhooks, "
        f"e-mail {'via ' + config.smtp.host if config.smtp else 'off'}, "
        f"{len(config.people)} people"
    )


@main.command()
@kafka_options
@click.option(
    "--file",
    "source",
    type=click.File("rb"),
    default="-",
    help="JSON lines to send (default stdin).",
)
def produce(source: IO[bytes], **kw: Any) -> None:
    """Send CloudEvent JSON lines to tickets.events, keyed by their `subject` (ticket id)."""
    from escalator.runtime.client import produce_lines

    settings = settings_from(**kw)
    sent = asyncio.run(produce_lines(settings, source.read().splitlines()))
    click.echo(f"sent {sent} event(s) to {settings.topic('tickets')}", err=True)


@main.command()
@kafka_options
@click.argument(
    "role",
    type=click.Choice(["escalations", "notifications", "deadletter", "tickets", "metrics"]),
    default="escalations",
)
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record.")
@click.option("--max", "limit", type=int, default=0, help="Stop after N records (0: follow).")
def tail(role: str, from_beginning: bool, limit: int, **kw: Any) -> None:
    """Print an output topic readably: time, type, id and the key fields of each event."""
    from escalator.runtime.client import tail_topic

    asyncio.run(tail_topic(settings_from(**kw), role, from_beginning, limit, click.echo))


@main.group()
def deadletter() -> None:
    """Inspect and replay dead-lettered records."""


@deadletter.command("replay")
@kafka_options
@click.option(
    "--reason",
    "reasons",
    multiple=True,
    help="Only records refused for this reason (repeatable); default: all.",
)
@click.option("--dry-run", is_flag=True, help="List what would be replayed; send nothing.")
def deadletter_replay(reasons: tuple[str, ...], dry_run: bool, **kw: Any) -> None:
    """Re-submit dead-lettered records to the topic they came from, after a fix.

    Each record goes back with its original key and bytes; events already applied are
    refused again as duplicates, so a second replay changes nothing.
    """
    from escalator.runtime.client import replay_deadletters

    settings = settings_from(**kw)
    count = asyncio.run(replay_deadletters(settings, reasons, dry_run, click.echo))
    click.echo(f"{'would replay' if dry_run else 'replayed'} {count} record(s)", err=True)


@main.command("import")
@kafka_options
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    help="File format; default: by extension (.csv; .jsonl, .ndjson, .json).",
)
@click.option(
    "--source",
    default="escalator-import",
    show_default=True,
    help="CloudEvents `source` of the snapshots (who reported the tickets).",
)
@click.option(
    "--as-of",
    help="When the export was taken (RFC 3339): the snapshots' `time`. Default: now.",
)
@policy_option("Policy YAML used to count overdue tickets [ESCALATOR_POLICY].")
@click.option("--dry-run", is_flag=True, help="Validate and summarise; send nothing.")
def import_(
    file: Path,
    fmt: str | None,
    source: str,
    as_of: str | None,
    policy_file: Path,
    dry_run: bool,
    **kw: Any,
) -> None:
    """Import open tickets from FILE (CSV or JSON lines; docs/import.md) as ticket.snapshot
    events on tickets.events, keyed by ticket id.

    Every row is validated as the worker would; a refused row is reported with its line
    number and reason and not sent, the rest are. The summary (stdout) counts rows read,
    imported, refused and overdue (a target already past at import under the policy). Exit
    status 0, or 1 when rows were refused, or 2 when the file or Kafka failed.
    """
    import time

    from escalator.service import importer

    loaded = _load_policy_or_exit(policy_file)
    as_of_ms = int(time.time() * 1000)
    if as_of is not None:
        try:
            as_of_ms = parse_time(as_of, "--as-of")
        except InvalidEvent as exc:
            raise click.BadParameter(exc.message, param_hint="--as-of") from None
    name = str(file)
    if name == "-" and fmt is None:
        raise click.BadParameter("reading stdin needs --format", param_hint="--format")
    fmt = importer.detect_format(name, fmt)
    data = sys.stdin.buffer.read() if name == "-" else file.read_bytes()
    outcomes = importer.read(data, fmt, importer.Options(source, as_of_ms))
    tally = importer.Tally(loaded)
    with _import_progress(data) as progress:
        if dry_run:
            for outcome in outcomes:
                tally.add(outcome)
                progress(outcome)
        else:
            from escalator.runtime.importer import produce_snapshots

            settings = settings_from(**kw)
            asyncio.run(produce_snapshots(settings, outcomes, tally, progress))
    summary = tally.summary(dry_run)
    for line in summary.lines():
        click.echo(line)
    if summary.refused:
        sys.exit(1)


PROGRESS_EVERY = 10_000  # rows between progress lines when stderr is not a terminal


@contextlib.contextmanager
def _import_progress(data: bytes) -> Iterator[Callable[[Any], None]]:
    """A progress bar on stderr when it is a terminal, else a line every PROGRESS_EVERY rows
    (logs stay readable); stdout is kept for the summary. Progress is by line of the file."""
    total = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    seen = [0]
    if not sys.stderr.isatty():

        def report(outcome: Any) -> None:
            seen[0] += 1
            if seen[0] % PROGRESS_EVERY == 0:
                click.echo(f"import: {seen[0]} rows, line {outcome.line} of {total}", err=True)

        yield report
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    ) as bar:
        task = bar.add_task("importing (lines)", total=total)

        def draw(outcome: Any) -> None:
            seen[0] += 1
            # Redrawing is throttled by rich; updating costs a lock, so not on every row.
            if seen[0] % 200 == 0:
                bar.update(task, completed=outcome.line)

        yield draw
        bar.update(task, completed=total)


@main.command()
def sample() -> None:
    """Print sample ticket events (JSON lines) timed so deadlines fall due within a minute."""
    import time

    from escalator.samples import sample_events

    for doc in sample_events(int(time.time() * 1000)):
        click.echo(orjson.dumps(doc).decode())


def run() -> None:
    """Entry point that turns expected errors into one clear line and exit status 2."""
    try:
        main(standalone_mode=True)
    except EscalatorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":  # `python -m escalator.cli`, as the console script does
    run()
