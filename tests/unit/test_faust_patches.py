"""The Faust fix is installed, and only for the Faust version it was written against."""

from __future__ import annotations

import faust
from faust.tables.recovery import Recovery

from escalator.runtime import faust_patches


def test_patch_targets_the_pinned_faust_version() -> None:
    # Upgrading faust-streaming? Re-check faust#596 and the failover tests, then update this.
    assert faust.__version__ == faust_patches.PATCHED_FAUST_VERSION


def test_apply_installs_the_fix_once() -> None:
    faust_patches.apply()
    faust_patches.apply()
    assert Recovery.on_recovery_completed is faust_patches._on_recovery_completed
