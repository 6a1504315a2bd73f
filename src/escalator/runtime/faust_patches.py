"""A fix for faust-streaming 0.15.3, applied at worker start-up.

faust#596: `Recovery.on_recovery_completed` resumes the input partitions and seeks while message
flow is already on; records fetched during that seek are queued, then dropped by
`flow_control.resume()`, and never fetched again — events silently lost after a rebalance (or
commits stuck behind the hole). Stopping the flow first makes the fetcher discard and re-fetch
them. Found by the two-worker failover test (tests/integration/test_failover.py); a unit test
pins the Faust version so an upgrade forces a re-check.
"""

from __future__ import annotations

from typing import Any

from faust.tables.recovery import Recovery

PATCHED_FAUST_VERSION = "0.15.3"
_original = Recovery.on_recovery_completed


async def _on_recovery_completed(self: Any, generation_id: int = 0) -> None:
    self.app.consumer.stop_flow()  # on_recovery_completed turns it on again after its seek
    await _original(self, generation_id)


def apply() -> None:
    """Install the fix (idempotent)."""
    if Recovery.on_recovery_completed is not _on_recovery_completed:
        Recovery.on_recovery_completed = _on_recovery_completed  # type: ignore[method-assign]
