"""What `edgeserve models gc` prints per instance, Redis's removals included."""

from __future__ import annotations

from edgeserve.cli.collect import _row


def test_a_dry_run_row_lists_what_would_leave_redis_chunks_no_manifest_names_included():
    data = {
        "dry_run": True,
        "kept": [{"version": "aaaaaaaaaaaa", "why": "A"}],
        "removed": [],
        "removed_bytes": 0,
        "removed_from_redis": ["bbbbbbbbbbbb", "blob:cccccccccccc"],
    }
    assert _row(data) == [
        "aaaaaaaaaaaa (A)",
        "would remove: nothing (0 bytes); from Redis: bbbbbbbbbbbb, blob:cccccccccccc",
    ]


def test_a_row_without_redis_removals_is_as_before():
    data = {"dry_run": False, "kept": [], "removed": [], "removed_bytes": 0}
    assert _row(data) == ["-", "removed: nothing (0 bytes)"]
