"""Telling listeners about a change: each one called, a failing one logged, the others still told."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


def tell_all(listeners: Iterable[Callable[[T], None]], value: T, what: str) -> None:
    for listener in listeners:
        try:
            listener(value)
        except Exception:
            log.exception("a %s listener failed", what)
