"""Reading JSON of unknown shape (provider answers, client bodies) without a chain of isinstance checks."""

from __future__ import annotations

import json
from typing import Any


def mapping(value: Any) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one (for reading optional nested fields)."""
    return value if isinstance(value, dict) else {}


def present_fields(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The named attributes of `obj` that are set (not None, not empty), e.g. for metadata kept with an account."""
    return {name: getattr(obj, name) for name in names if getattr(obj, name)}


def json_or_none(content: bytes) -> Any:
    """`content` parsed as JSON, or None when it is empty or not JSON."""
    try:
        return json.loads(content) if content else None
    except ValueError:
        return None
