"""What can be checked of the deploy files without a Docker engine."""

from __future__ import annotations

from ruamel.yaml import YAML

from escalator.cli import main
from tests.helpers import ROOT


def worker_env_vars() -> set[str]:
    names: set[str] = set()
    for command in (main.commands["worker"],):
        for param in command.params:
            envvar = getattr(param, "envvar", None)
            names.update([envvar] if isinstance(envvar, str) else envvar or [])
    return names


def test_compose_file_parses_mounts_exist_and_env_names_are_settings() -> None:
    compose = YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())
    known = worker_env_vars()
    assert "ESCALATOR_BOOTSTRAP_SERVERS" in known
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
        for variable in service.get("environment", {}):
            if variable.startswith("ESCALATOR_"):
                assert variable in known, f"{name}: {variable} is not a worker setting"
    ports = compose["services"]["escalator"]["ports"]
    web_port = compose["services"]["escalator"]["environment"]["ESCALATOR_WEB_PORT"]
    assert f"{web_port}:{web_port}" in ports
    prometheus = YAML(typ="safe").load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"escalator:{web_port}"]
