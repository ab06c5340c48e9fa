"""Which store holds the state: Redis when STATE_URL is set (a fleet), else the file."""

from __future__ import annotations

from pathlib import Path

from edgeserve.settings import Settings, SettingsError
from edgeserve.state.answer_folder import AnswerFolder, folder_beside
from edgeserve.state.file_store import FileStore
from edgeserve.state.store import StateStore
from edgeserve.traffic.paired_feedback import AnswerStore


def open_store(settings: Settings, state_file: Path | None = None) -> StateStore:
    """STATE_URL wins over STATE_PATH; `state_file` is the per-instance file used without both."""
    if settings.state_url:
        # Imported only when asked for, so one host without Redis needs no Redis client.
        try:
            from edgeserve.state.redis_store import RedisStore
        except ModuleNotFoundError as error:
            raise SettingsError(
                f"STATE_URL is set but the Redis backend cannot be loaded ({error}): "
                "unset STATE_URL to keep the state in STATE_PATH"
            ) from None
        return RedisStore(settings.state_url)
    path = state_file or settings.state_path
    if path is None:
        raise ValueError("no state file: set STATE_PATH or pass the per-instance state file")
    return FileStore(path)


def open_answer_store(settings: Settings, state_file: Path) -> AnswerStore:
    """Where B's shadow answers wait for feedback: Redis with STATE_URL (any instance takes
    them), else a folder beside the state file (any worker of this instance takes them)."""
    ttl = settings.feedback_token_ttl_seconds
    if settings.state_url:
        from edgeserve.state.answer_redis import AnswerRedis  # see open_store

        return AnswerRedis(settings.state_url, ttl)
    return AnswerFolder(folder_beside(state_file), settings.feedback_replay_memory, ttl)
