"""The changelog topics a worker creates before Faust starts are exactly its tables' changelogs."""

from __future__ import annotations

from pathlib import Path

import pytest

from escalator.config.policy_file import load_policy
from escalator.config.settings import DEFAULT_POLICY, Settings
from escalator.runtime.app import Worker, changelog_topics


@pytest.mark.parametrize("shadow", [False, True])
def test_changelog_topics_name_every_table_as_faust_does(shadow: bool, tmp_path: Path) -> None:
    settings = Settings(app_id="esc-names", data_dir=tmp_path, partitions=3)
    policy = load_policy(DEFAULT_POLICY)
    worker = Worker(settings, policy, policy if shadow else None)
    faust_names = {t.changelog_topic.get_topic_name() for t in worker.app.tables.values()}
    assert set(changelog_topics(settings, shadow)) == faust_names
    assert len(faust_names) == (4 if shadow else 3)
