"""The rollout state core: the validated document, the stores that hold it, the sync loop."""
