"""A local, stateful JOFI API v2 — the opponent of our end-to-end tests and benchmarks.

Built from the API docs (shared/jofi-api.md, section 8), never from our client: it imports nothing
else from `jofi_pipeline`, so it is free to disagree with it.
"""
