"""The rollout state core: the validated document, the stores that hold it, the sync loop.

schema       the document and its rules (RuntimeState, parse_state, validate_update, InvalidState)
store        the StateStore interface every backend implements, and StoreUnavailable
file_store   one JSON file on one host (STATE_PATH); redis_store: a fleet (STATE_URL)
backend      open_store(settings): which backend holds the state
model_store  content-addressed, read-only model copies the state names by sha256
start        the state a server starts from (main process, before the workers)
sync         StateSync: commit a change (persist, then apply) and follow the store
"""
