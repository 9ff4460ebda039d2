"""Reading back what a running Kleis learned (its recorder writes every half second, off the event loop)."""

from __future__ import annotations

import time

from store import learned as learned_store


def stored_learned(name: str, timeout: float = 5.0) -> str | None:
    """A learned value once the proxy's recorder has written it (None if it never was)."""
    deadline = time.time() + timeout
    while (value := learned_store.load().get(name)) is None and time.time() < deadline:
        time.sleep(0.02)
    return value
