"""What can be checked of the deploy files without a Docker engine, Kubernetes or Grafana.

- Prometheus: `promtool check config` / `check rules`, and the promtool unit tests in
  tests/deploy/ (every alert fires and stays quiet as intended; recording rules compute the
  expected values). Alertmanager: `amtool check-config`. The tools are Debian packages
  (scripts/install-system-deps); a missing tool fails the test, it is never skipped. Tests
  that run them are marked `tools` (`pytest tests/unit -m "not tools"` leaves them out), and
  an unmarked test that tries to run one fails.
- docker-compose.yml and deploy/k8s/: parse, mounted files exist, every ESCALATOR_* variable is a
  real setting, and the ports, URLs and paths the pieces use to reach each other agree.
- The Grafana dashboard: well-formed, and every query is valid PromQL. That every query (and
  every rule) returns data from a real worker is tests/integration/test_prometheus.py, which
  reuses the helpers below.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from ruamel.yaml import YAML

from escalator.cli import main
from escalator.config.notifier_file import coverage, load_notifier, parse_notifier
from escalator.config.policy_file import parse_policy
from tests import helpers
from tests.helpers import ROOT

PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES_DIR = ROOT / "deploy" / "prometheus" / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
ALERTS_FILE = RULES_DIR / "escalator-alerts.yml"
RUNBOOK = ROOT / "deploy" / "prometheus" / "RUNBOOK.md"
PROMTOOL_TESTS = sorted((ROOT / "tests" / "deploy").glob("*.yml"))
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "escalator.json"
GRAFANA_PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
K8S_DIR = ROOT / "deploy" / "k8s"
# Grafana's variables, replaced the way Grafana would for a query against a 1s-scrape Prometheus.
DASHBOARD_VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "1h",
    "$__interval": "15s",
    "${job}": "escalator",
    "$job": "escalator",
}


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text())


def load_all_yaml(path: Path) -> list[Any]:
    return [doc for doc in YAML(typ="safe").load_all(path.read_text()) if doc is not None]


def command_env_vars(*path: str) -> set[str]:
    """The ESCALATOR_* (and other) environment variables of an `escalator` subcommand."""
    command: Any = main
    for name in path:
        command = command.commands[name]
    names: set[str] = set()
    for param in command.params:
        envvar = getattr(param, "envvar", None)
        names.update([envvar] if isinstance(envvar, str) else envvar or [])
    return names


def worker_env_vars() -> set[str]:
    return command_env_vars("worker")


# --- running promtool / amtool ----------------------------------------------------------------


def tool(name: str) -> str:
    if not helpers.TOOLS_ALLOWED:
        pytest.fail(f"a test that runs {name} must be marked @pytest.mark.tools", pytrace=False)
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed: run scripts/install-system-deps "
            "(Debian packages prometheus and prometheus-alertmanager)",
            pytrace=False,
        )
    return path


def run_tool(name: str, *args: str | Path) -> str:
    done = subprocess.run(
        [tool(name), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"{name} {' '.join(map(str, args))} failed:\n{output}", pytrace=False)
    return output


# --- rules, alerts and dashboard queries (shared with tests/integration/test_prometheus.py) -----


def rules(path: Path) -> Iterator[dict[str, Any]]:
    for group in load_yaml(path)["groups"]:
        yield from group["rules"]


def recording_rules() -> list[dict[str, Any]]:
    return [rule for path in RULE_FILES for rule in rules(path) if "record" in rule]


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for path in RULE_FILES for rule in rules(path) if "alert" in rule]


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_panels(board: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    for panel in (board or dashboard())["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows keep their panels inside


def substitute(expr: str) -> str:
    for name, value in DASHBOARD_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unknown dashboard variable in {expr!r}"
    return expr


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL with the dashboard variables replaced) for every target."""
    return [
        (panel["title"], substitute(target["expr"]))
        for panel in dashboard_panels()
        for target in panel.get("targets", [])
    ]


def template_queries() -> list[str]:
    """The `label_values(metric, label)` queries of the dashboard's variables."""
    return [
        var["definition"] for var in dashboard()["templating"]["list"] if var["type"] == "query"
    ]


_COMPARISON = re.compile(r"==|!=|>=|<=|>|<")


def as_data_query(expr: str) -> str:
    """An alert expression that returns a sample for every series it compares, firing or not.

    Comparison operators become `bool` comparisons (0 or 1 instead of dropping the series),
    outside label matchers and strings. A query that still returns nothing compares metrics
    that do not exist or label sets that do not match.
    """
    out: list[str] = []
    depth, quote, i = 0, "", 0
    while i < len(expr):
        char = expr[i]
        if quote:
            out.append(char)
            if char == "\\":
                out.append(expr[i + 1])
                i += 1
            elif char == quote:
                quote = ""
            i += 1
            continue
        if char in "\"'`":
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif depth == 0 and (match := _COMPARISON.match(expr, i)):
            out.append(match.group())
            i = match.end()
            if not expr[i:].lstrip().startswith("bool"):
                out.append(" bool")
            continue
        out.append(char)
        i += 1
    return "".join(out)


# --- Prometheus -------------------------------------------------------------------------------


@pytest.mark.tools
def test_promtool_check_config() -> None:
    output = run_tool("promtool", "check", "config", PROMETHEUS_CONFIG)
    assert f"{len(RULE_FILES)} rule files found" in output, output


@pytest.mark.tools
def test_promtool_check_rules() -> None:
    assert [p.name for p in RULE_FILES] == ["escalator-alerts.yml", "escalator-recording.yml"]
    run_tool("promtool", "check", "rules", *RULE_FILES)


@pytest.mark.tools
def test_promtool_unit_tests_of_rules_and_alerts() -> None:
    assert PROMTOOL_TESTS, "no promtool tests in tests/deploy"
    output = run_tool("promtool", "test", "rules", *PROMTOOL_TESTS)
    assert output.count("SUCCESS") == len(PROMTOOL_TESTS), output


def test_prometheus_config_loads_the_rules_and_points_at_alertmanager() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    globbed = {
        path for pattern in config["rule_files"] for path in PROMETHEUS_CONFIG.parent.glob(pattern)
    }
    assert globbed == set(RULE_FILES)
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
    assert config["scrape_configs"][0]["job_name"] == "escalator"


def promtool_tests() -> list[dict[str, Any]]:
    return [case for path in PROMTOOL_TESTS for case in load_yaml(path)["tests"]]


def test_every_alert_has_a_firing_and_a_quiet_promtool_test() -> None:
    fired: set[tuple[str, str]] = set()
    quiet: set[str] = set()
    for case in promtool_tests():
        for check in case.get("alert_rule_test", []):
            if check.get("exp_alerts"):
                fired.update(
                    (check["alertname"], alert["exp_labels"]["severity"])
                    for alert in check["exp_alerts"]
                )
            else:
                quiet.add(check["alertname"])
    alerts = {(rule["alert"], rule["labels"]["severity"]) for rule in alerting_rules()}
    assert alerts - fired == set(), "alerts without a firing test"
    assert {name for name, _ in alerts} - quiet == set(), "alerts without a not-firing test"


def test_every_recording_rule_has_a_value_check() -> None:
    checked = " ".join(
        check["expr"] for case in promtool_tests() for check in case.get("promql_expr_test", [])
    )
    missing = [r["record"] for r in recording_rules() if r["record"] not in checked]
    assert missing == []


def test_alerts_have_for_severity_summary_description_and_a_runbook_section() -> None:
    anchors = {
        re.sub(r"[^a-z0-9_-]", "", line.lstrip("#").strip().lower().replace(" ", "-"))
        for line in RUNBOOK.read_text().splitlines()
        if line.startswith("## ")
    }
    for rule in alerting_rules():
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name}: no for:"
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        annotations = rule["annotations"]
        assert annotations["summary"], name
        assert annotations["description"], name
        link, _, hint = annotations["runbook"].partition(": ")
        path, _, anchor = link.partition("#")
        assert (ROOT / path) == RUNBOOK, f"{name}: {link}"
        assert anchor == name.lower(), f"{name}: {link}"
        assert anchor in anchors, f"{name}: no section '## {name}' in {RUNBOOK.name}"
        assert hint, f"{name}: the runbook annotation has no first step"


def test_as_data_query_rewrites_comparisons_only_outside_matchers_and_strings() -> None:
    expr = 'label_replace(a{s=~"P1|P2",x!="y"}, "t", "$1", "s", "(.*)") > 1800 and on (j) b >= 8'
    assert as_data_query(expr) == (
        'label_replace(a{s=~"P1|P2",x!="y"}, "t", "$1", "s", "(.*)") > bool 1800'
        " and on (j) b >= bool 8"
    )
    assert as_data_query("a == bool 0") == "a == bool 0"


# --- Alertmanager -----------------------------------------------------------------------------


@pytest.mark.tools
def test_amtool_check_config() -> None:
    run_tool("amtool", "check-config", ALERTMANAGER_CONFIG)


# --- Grafana ----------------------------------------------------------------------------------


def test_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] == "escalator"
    assert board["title"]
    panels = list(dashboard_panels(board))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    variables = {var["name"]: var for var in board["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [target["refId"] for target in panel["targets"]]
        assert refs, panel["title"]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert "$job" in target["expr"], f"{panel['title']}: not filtered by $job"
    titles = {panel["title"] for panel in panels}
    # The runbook and the alerts' annotations point at these panels.
    for title in re.findall(r"dashboard: ([A-Z][a-z]+(?: [a-z]+)+)", ALERTS_FILE.read_text()):
        assert title in titles, title
    runbooks = RUNBOOK.read_text() + (K8S_DIR / "README.md").read_text()
    mentions = re.findall(r'panels? ((?:"[^"]+"(?:,| and) )*"[^"]+")', runbooks)
    quoted = [title for found in mentions for title in re.findall(r'"([^"]+)"', found)]
    assert len(quoted) >= 8
    for title in quoted:
        assert title in titles, title
    assert f'title "{board["title"]}"' in RUNBOOK.read_text()


@pytest.mark.tools
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses every query (as a throwaway recording rule)."""
    exprs = [expr for _, expr in dashboard_queries()]
    assert len(exprs) >= 30
    rule_file = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:q{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.rules.yml"
    path.write_text(json.dumps(rule_file))  # JSON is YAML
    run_tool("promtool", "check", "rules", path)


def test_grafana_provisioning_matches_compose_and_dashboard() -> None:
    compose = load_yaml(ROOT / "docker-compose.yml")
    grafana = compose["services"]["grafana"]
    mounts = dict(volume.split(":")[:2] for volume in grafana["volumes"])
    (datasource,) = load_yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    variables = {var["name"]: var for var in dashboard()["templating"]["list"]}
    assert datasource["uid"] == variables["datasource"]["current"]["value"]
    assert datasource["type"] == "prometheus"
    url = urlparse(datasource["url"])
    assert url.hostname == "prometheus"
    assert f"{url.port}:{url.port}" in compose["services"]["prometheus"]["ports"]
    (provider,) = load_yaml(GRAFANA_PROVISIONING / "dashboards" / "escalator.yml")["providers"]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    for kind in ("datasources", "dashboards"):
        target = mounts[f"./deploy/grafana/provisioning/{kind}"]
        assert target == f"/etc/grafana/provisioning/{kind}"
    assert "3000:3000" in grafana["ports"]


# --- docker-compose.yml -----------------------------------------------------------------------


def test_compose_file_parses_mounts_exist_and_env_names_are_settings() -> None:
    compose = load_yaml(ROOT / "docker-compose.yml")
    assert "ESCALATOR_BOOTSTRAP_SERVERS" in worker_env_vars()
    for name, service in compose["services"].items():
        known = command_env_vars("notify") if name == "notify" else worker_env_vars()
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
    prometheus = load_yaml(PROMETHEUS_CONFIG)
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"escalator:{web_port}"]


def test_compose_runs_the_notifier_with_the_example_file_and_prometheus_scrapes_it() -> None:
    compose = load_yaml(ROOT / "docker-compose.yml")
    notify = compose["services"]["notify"]
    assert notify["command"] == ["notify"]
    env = notify["environment"]
    mounts = dict(volume.split(":")[:2] for volume in notify["volumes"])
    assert mounts["./examples/notifier.yaml"] == env["ESCALATOR_NOTIFIER"]
    config = load_notifier(ROOT / "examples" / "notifier.yaml")
    # Every secret the file names is handed to the container.
    assert {var for _, var in config.env_names()} <= set(env)
    assert coverage(config, parse_policy((ROOT / "examples" / "policy.yaml").read_text())) == []
    port = env["ESCALATOR_NOTIFY_WEB_PORT"]
    assert f"{port}:{port}" in notify["ports"]
    jobs = {job["job_name"]: job for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]}
    (target,) = jobs["escalator-notify"]["static_configs"][0]["targets"]
    assert target == f"notify:{port}"


def test_compose_prometheus_gets_its_rules_and_reaches_alertmanager() -> None:
    compose = load_yaml(ROOT / "docker-compose.yml")
    services = compose["services"]
    mounts = dict(v.split(":")[:2] for v in services["prometheus"]["volumes"])
    config_at = Path(mounts["./deploy/prometheus/prometheus.yml"])
    rules_at = Path(mounts["./deploy/prometheus/rules"])
    for pattern in load_yaml(PROMETHEUS_CONFIG)["rule_files"]:
        assert (config_at.parent / pattern).parent == rules_at  # relative to the config file
    (target,) = load_yaml(PROMETHEUS_CONFIG)["alerting"]["alertmanagers"][0]["static_configs"][0][
        "targets"
    ]
    host, port = target.split(":")
    assert host in services
    assert f"{port}:{port}" in services[host]["ports"]


def test_compose_alertmanager_calls_the_worker_webhook_with_the_worker_token() -> None:
    compose = load_yaml(ROOT / "docker-compose.yml")
    services = compose["services"]
    alertmanager = services["alertmanager"]
    mounts = dict(v.split(":")[:2] for v in alertmanager["volumes"])
    config_at = mounts["./deploy/alertmanager/alertmanager.yml"]
    assert f"--config.file={config_at}" in alertmanager["command"]
    config = load_yaml(ALERTMANAGER_CONFIG)
    receivers = {r["name"]: r for r in config["receivers"]}
    (webhook,) = receivers[config["route"]["receiver"]]["webhook_configs"]
    url = urlparse(webhook["url"])
    worker = services["escalator"]["environment"]
    assert url.hostname == "escalator"
    assert url.hostname in services
    assert str(url.port) == worker["ESCALATOR_WEB_PORT"]
    assert url.path == "/alerts/alertmanager"
    assert webhook["send_resolved"] is True
    auth = webhook["http_config"]["authorization"]
    assert auth["type"] == "Bearer"
    assert "credentials" not in auth
    (secret,) = alertmanager["secrets"]
    assert auth["credentials_file"] == f"/run/secrets/{secret}"
    # The secret and the worker's token come from the same environment variable.
    assert compose["secrets"][secret] == {"environment": "ESCALATOR_HTTP_TOKEN"}
    assert worker["ESCALATOR_HTTP_TOKEN"].startswith("${ESCALATOR_HTTP_TOKEN")
    assert "9093:9093" in alertmanager["ports"]


# --- Kubernetes -------------------------------------------------------------------------------


def k8s_objects() -> list[dict[str, Any]]:
    objects = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in load_all_yaml(path):
            if doc.get("kind") != "Kustomization":
                assert {"apiVersion", "kind", "metadata"} <= set(doc), path.name
                objects.append(doc)
    return objects


def k8s_object(kind: str, name: str) -> dict[str, Any]:
    found = [o for o in k8s_objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def container_env(container: dict[str, Any]) -> dict[str, Any]:
    """Every environment variable of a container the manifests define: envFrom ConfigMaps,
    then env (which wins)."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:  # a secretRef's keys are not in the manifests
            env.update(k8s_object("ConfigMap", source["configMapRef"]["name"])["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", item.get("valueFrom"))
    return env


def test_k8s_manifests_parse_and_kustomization_lists_them_all() -> None:
    files = sorted(p.name for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(load_yaml(K8S_DIR / "kustomization.yaml")["resources"]) == files
    kinds = sorted(o["kind"] for o in k8s_objects())
    expected = ["ConfigMap", "ConfigMap", "Job", "PodDisruptionBudget", "Service", "Service"]
    assert kinds == sorted([*expected, "StatefulSet", "ConfigMap", "Deployment"])


def test_k8s_env_names_are_settings_of_their_commands() -> None:
    worker_known = worker_env_vars()
    topics_known = command_env_vars("topics", "create")
    statefulset = k8s_object("StatefulSet", "escalator")
    (worker,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert worker["args"] == ["worker"]
    (topics,) = k8s_object("Job", "escalator-topics")["spec"]["template"]["spec"]["containers"]
    assert topics["args"] == ["topics", "create"]
    for container, known in ((worker, worker_known), (topics, topics_known)):
        env = container_env(container)
        names = [n for n in env if n.startswith("ESCALATOR_")]
        assert names, container["name"]
        for name in names:
            assert name in known, f"{container['name']}: {name} is not a setting"
    # The Kafka settings the worker and the Job must agree on come from one ConfigMap.
    shared = k8s_object("ConfigMap", "escalator-kafka")["data"]
    assert set(shared) <= worker_known & topics_known
    for container in (worker, topics):
        assert {"configMapRef": {"name": "escalator-kafka"}} in container["envFrom"]
    replicas = statefulset["spec"]["replicas"]
    assert 1 <= replicas <= int(shared["ESCALATOR_PARTITIONS"]), "replicas > partitions"


def test_k8s_statefulset_identity_volumes_and_probes() -> None:
    statefulset = k8s_object("StatefulSet", "escalator")
    spec = statefulset["spec"]
    pod = spec["template"]["spec"]
    (worker,) = pod["containers"]
    env = container_env(worker)
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()

    # Stable identity: the headless Service, and the pod's DNS name as ESCALATOR_WEB_HOST.
    headless = k8s_object("Service", spec["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"].items() <= labels.items()
    assert env["ESCALATOR_WEB_HOST"] == f"$(POD_NAME).{spec['serviceName']}.$(POD_NAMESPACE).svc"
    defined = [item["name"] for item in worker["env"]]
    assert defined.index("POD_NAME") < defined.index("ESCALATOR_WEB_HOST")
    assert defined.index("POD_NAMESPACE") < defined.index("ESCALATOR_WEB_HOST")
    regular = k8s_object("Service", "escalator")
    assert regular["spec"].get("clusterIP") != "None"
    assert regular["spec"]["selector"].items() <= labels.items()

    # The web port: bound on all interfaces, named `web`, served by both Services.
    (port,) = worker["ports"]
    assert port["name"] == "web"
    assert str(port["containerPort"]) == env["ESCALATOR_WEB_PORT"]
    assert env["ESCALATOR_WEB_BIND"] == "0.0.0.0"
    for service in (headless, regular):
        (service_port,) = service["spec"]["ports"]
        assert service_port["targetPort"] in ("web", port["containerPort"])

    # Probes: GET /health on the web port.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        http = worker[probe]["httpGet"]
        assert http["path"] == "/health", probe
        assert http["port"] in ("web", port["containerPort"]), probe

    # RocksDB on the per-pod volume; the policy from the ConfigMap.
    mounts = {m["name"]: m["mountPath"] for m in worker["volumeMounts"]}
    (claim,) = spec["volumeClaimTemplates"]
    assert env["ESCALATOR_STORE"] == "rocksdb"
    assert mounts[claim["metadata"]["name"]] == env["ESCALATOR_DATA_DIR"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    policy_volume = volumes["policy"]["configMap"]
    (item,) = policy_volume["items"]
    assert env["ESCALATOR_POLICY"] == f"{mounts['policy']}/{item['path']}"
    assert item["key"] in k8s_object("ConfigMap", policy_volume["name"])["data"]

    # The token from a Secret, never inline.
    assert "secretKeyRef" in env["ESCALATOR_HTTP_TOKEN"]

    # Resources: requests and limits.
    resources = worker["resources"]
    assert resources["requests"] == {"cpu": "500m", "memory": "512Mi"}
    assert resources["limits"]["memory"]
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    assert pod["terminationGracePeriodSeconds"] >= 30


def test_k8s_notifier_deployment_settings_probes_and_its_file() -> None:
    deployment = k8s_object("Deployment", "escalator-notify")
    pod = deployment["spec"]["template"]["spec"]
    (notify,) = pod["containers"]
    assert notify["args"] == ["notify"]
    env = container_env(notify)
    known = command_env_vars("notify")
    for name in (n for n in env if n.startswith("ESCALATOR_")):
        assert name in known, f"notify: {name} is not a setting of escalator notify"
    assert {"configMapRef": {"name": "escalator-kafka"}} in notify["envFrom"]
    assert {"secretRef": {"name": "escalator-notify"}} in notify["envFrom"]
    (port,) = notify["ports"]
    assert str(port["containerPort"]) == env["ESCALATOR_NOTIFY_WEB_PORT"]
    assert env["ESCALATOR_WEB_BIND"] == "0.0.0.0"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert notify[probe]["httpGet"]["path"] == "/health", probe
        assert notify[probe]["httpGet"]["port"] in ("web", port["containerPort"]), probe
    mounts = {m["name"]: m["mountPath"] for m in notify["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (item,) = volumes["notifier"]["configMap"]["items"]
    assert env["ESCALATOR_NOTIFIER"] == f"{mounts['notifier']}/{item['path']}"
    text = k8s_object("ConfigMap", volumes["notifier"]["configMap"]["name"])["data"][item["key"]]
    config = parse_notifier(text, "deploy/k8s/notifier-configmap.yaml")
    policy = k8s_object("ConfigMap", "escalator-policy")["data"]["policy.yaml"]
    assert coverage(config, parse_policy(policy)) == []
    assert mounts["data"] == env["ESCALATOR_DATA_DIR"]
    assert notify["resources"]["requests"]
    assert notify["resources"]["limits"]["memory"]


def test_k8s_policy_configmap_is_a_valid_policy() -> None:
    configmap = k8s_object("ConfigMap", "escalator-policy")
    policy = parse_policy(configmap["data"]["policy.yaml"], "deploy/k8s/policy-configmap.yaml")
    assert policy.version
    assert policy.tiers
