"""Unit-test guards."""

from __future__ import annotations

import pytest

from tests import helpers


@pytest.fixture(autouse=True)
def _tools_only_in_marked_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test that runs promtool/amtool (tests/unit/test_deploy.py `tool`) must be marked
    `tools`, so that `pytest tests/unit -m "not tools"` leaves every slow binary out."""
    if request.node.get_closest_marker("tools") is None:
        monkeypatch.setattr(helpers, "TOOLS_ALLOWED", False)
