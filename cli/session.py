"""The store for one CLI command: opened (and migrated) on entry, closed on the way out, whatever happens."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from core.config import Config
from store.db import Store, open_store


@contextlib.contextmanager
def store_session(config: Config) -> Iterator[Store]:
    store = open_store(config)
    try:
        yield store
    finally:
        store.close()
