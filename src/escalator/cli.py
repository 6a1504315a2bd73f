"""The `escalator` command line (click: composable sub-commands, env-var backed options)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

import click
import orjson

from escalator.adapters.cloudevents import parse_time
from escalator.config.policy_file import load_policy
from escalator.errors import ConfigError, EscalatorError, InvalidEvent

DEFAULT_POLICY = Path(__file__).parent / "default_policy.yaml"


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="escalator")
def main() -> None:
    """escalator: SLA escalation processor for support and operations teams."""


# --- policy -----------------------------------------------------------------------------------


@main.group()
def policy() -> None:
    """Check and publish policy files."""


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def policy_check(file: Path) -> None:
    """Validate FILE; print a one-line summary, or the error with file, line and field."""
    loaded = _load_policy_or_exit(file)
    click.echo(
        f"{file}: ok — version {loaded.version}, {len(loaded.targets)} target rules, "
        f"{len(loaded.calendars)} calendars, tiers {' → '.join(t.name for t in loaded.tiers)}"
    )


def _load_policy_or_exit(file: Path):  # type: ignore[no-untyped-def]
    try:
        return load_policy(file)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


# --- simulate ---------------------------------------------------------------------------------


@main.command()
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=str(DEFAULT_POLICY),
    show_default="the built-in example policy",
    help="Policy YAML to apply.",
)
@click.option("--until", help="Fire every timer due up to this RFC 3339 instant.")
@click.option("--summary", is_flag=True, help="Print support figures (JSON) instead of events.")
@click.option(
    "--compare",
    "compare_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Backtest a second policy on the same events and print what changes.",
)
@click.argument("events", type=click.File("rb"), default="-")
def simulate(
    policy_file: Path,
    until: str | None,
    summary: bool,
    compare_file: Path | None,
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
    lines = events.read().splitlines()
    result = sim.run(lines, base_policy, until_ms)
    for letter in result.dead_letters:
        doc = orjson.loads(letter.value)
        click.echo(
            f"dead-letter: line {doc['source_offset']}: {doc['reason']}: {doc['message']}",
            err=True,
        )
    out = click.get_binary_stream("stdout")
    if compare_file is not None:
        other = sim.run(lines, _load_policy_or_exit(compare_file), until_ms)
        report = compare(result.summary, other.summary)
        out.write(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")
        return
    if summary:
        out.write(orjson.dumps(result.summary.report(), option=orjson.OPT_INDENT_2) + b"\n")
        return
    for emission in result.emissions:
        out.write(emission.value + b"\n")


def run() -> None:
    """Entry point that turns expected errors into one clear line and exit status 2."""
    try:
        main(standalone_mode=True)
    except EscalatorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
