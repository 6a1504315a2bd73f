"""A real Alertmanager (Debian's prometheus-alertmanager) for integration tests: the fixture
`alertmanager` starts one that webhooks into a worker."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.harness import free_port

TOKEN = "am-webhook-token"
BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def config(webhook: str, repeat: str = "1h", receiver: str | None = None) -> str:
    """`receiver`: the escalator receiver's own configuration (YAML under `- name: escalator`,
    e.g. `pagerduty_configs`) instead of the webhook to `webhook`."""
    receiver = (
        receiver
        or f"""    webhook_configs:
      - url: {webhook}
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials: {TOKEN}}}"""
    )
    return f"""
route:
  receiver: escalator
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: {repeat}
receivers:
  - name: escalator
{receiver}
"""


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[Any]:
    if BINARY is None:
        pytest.fail("prometheus-alertmanager is not installed (scripts/install-system-deps)")

    class Instance:
        port = free_port()
        proc: subprocess.Popen[bytes] | None = None

        def start(self, webhook: str, repeat: str = "1h", receiver: str | None = None) -> None:
            """`repeat`: Alertmanager's repeat_interval, how often an unchanged firing group
            is sent again; `receiver`: see `config`."""
            (tmp_path / "am.yml").write_text(config(webhook, repeat, receiver))
            with (tmp_path / "alertmanager.log").open("wb") as log:
                self.proc = subprocess.Popen(
                    [
                        BINARY,
                        f"--config.file={tmp_path / 'am.yml'}",
                        f"--storage.path={tmp_path / 'am-data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--cluster.listen-address=",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1):
                        return
                except OSError:
                    time.sleep(0.2)
            raise AssertionError((tmp_path / "alertmanager.log").read_text())

        @property
        def url(self) -> str:
            return f"http://127.0.0.1:{self.port}"

        def post(self, alerts: list[dict[str, Any]]) -> None:
            request = urllib.request.Request(
                f"{self.url}/api/v2/alerts",
                data=orjson.dumps(alerts),
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5) as answer:
                assert answer.status == 200

    instance = Instance()
    yield instance
    if instance.proc is not None:
        instance.proc.terminate()
        instance.proc.wait(10)


def stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
