"""Defaults are defined once (config/settings.py, or the domain module it imports them from);
the `escalator` command and the README show those values and never a copy."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from escalator import cli
from escalator.config.settings import Settings
from escalator.domain.durations import DurationError, parse_duration
from tests.helpers import ROOT

CLI_SOURCE = ROOT / "src" / "escalator" / "cli.py"


def params_by_envvar(*path: str) -> dict[str, click.Parameter]:
    command: Any = cli.main
    for name in path:
        command = command.commands[name]
    found: dict[str, click.Parameter] = {}
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        for name in [envvar] if isinstance(envvar, str) else envvar or []:
            found[name] = param
    return found


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ESCALATOR_") or name == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("clean_env")
def test_worker_without_flags_runs_with_the_settings_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[Settings] = []

    def fake_run_worker(settings: Settings, policy: Any, shadow: Any = None) -> int:
        started.append(settings)
        return 0

    monkeypatch.setattr("escalator.runtime.main.run_worker", fake_run_worker)
    result = CliRunner().invoke(cli.main, ["worker"])
    assert result.exit_code == 0, result.output
    assert started == [Settings()]


@pytest.mark.usefixtures("clean_env")
def test_worker_refuses_pagerduty_routing_keys_without_the_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: list[Settings] = []
    monkeypatch.setattr(
        "escalator.runtime.main.run_worker", lambda settings, *_: started.append(settings) or 0
    )
    result = CliRunner().invoke(cli.main, ["worker", "--pagerduty-routing-keys", "k=checkout"])
    assert result.exit_code == 2
    assert "ESCALATOR_HTTP_TOKEN is not" in result.output
    assert started == []
    result = CliRunner().invoke(
        cli.main, ["worker", "--pagerduty-routing-keys", "k=checkout", "--http-token", "t"]
    )
    assert result.exit_code == 0, result.output
    assert len(started) == 1


def test_simulate_aggregate_defaults_are_the_settings_defaults() -> None:
    params = params_by_envvar("simulate")
    config = cli._aggregate_config(
        params["ESCALATOR_AGGREGATE_WINDOWS"].default,  # type: ignore[arg-type]
        params["ESCALATOR_COMPLIANCE_PERIOD"].default,  # type: ignore[arg-type]
        params["ESCALATOR_AGGREGATE_GRACE"].default,  # type: ignore[arg-type]
        params["ESCALATOR_AGGREGATE_RETENTION"].default,  # type: ignore[arg-type]
    )
    assert config == Settings().aggregates


def test_no_setting_option_has_a_literal_default() -> None:
    """An option backed by an ESCALATOR_* variable reads its default from Settings."""
    tree = ast.parse(CLI_SOURCE.read_text(), str(CLI_SOURCE))
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and ast.unparse(node.func) == "click.option"):
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        envvar = keywords.get("envvar")
        default = keywords.get("default")
        if envvar is None or default is None or "ESCALATOR_" not in ast.unparse(envvar):
            continue
        literal = any(isinstance(n, ast.Constant) for n in ast.walk(default))
        assert not literal or "DEFAULTS" in ast.unparse(default), (
            f"cli.py:{node.lineno}: {ast.unparse(envvar)} has a literal default "
            f"{ast.unparse(default)}; read it from DEFAULTS (Settings)"
        )


def _same(shown: str, default: Any) -> bool:
    if str(default) == shown:
        return True
    try:
        return parse_duration(shown) == parse_duration(str(default))
    except DurationError:
        return False


def test_readme_settings_table_shows_the_defaults() -> None:
    # The worker's table, the notifier's and `topics create`'s (their own settings; shared
    # ones are the worker's).
    params = {
        **params_by_envvar("topics", "create"),
        **params_by_envvar("notify"),
        **params_by_envvar("worker"),
    }
    row = re.compile(r"^\| `(ESCALATOR_[A-Z_]+)`(?: / `(ESCALATOR_[A-Z_]+)`)?[^|]* \| ([^|]*) \|")
    checked = 0
    for line in Path(ROOT / "README.md").read_text().splitlines():
        match = row.match(line)
        if match is None:
            continue
        names = [n for n in match.group(1, 2) if n]
        shown = re.findall(r"`([^`]*)`", match.group(3))
        if not shown:  # "empty", "none", "built-in example"
            continue
        assert len(shown) == len(names), line
        for name, value in zip(names, shown, strict=True):
            assert name in params, f"README names {name}, which `escalator worker`/`notify` lack"
            default = params[name].default
            assert _same(value, default), f"README: {name} defaults to {value}, code: {default}"
            checked += 1
    assert checked >= 15
