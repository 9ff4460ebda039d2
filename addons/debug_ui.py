"""What `kleis.py debug` lets mitmweb's UI show and do: redacted output, a per-run token, no code loading.

Plain functions; addons.compat wires them into mitmweb's handlers.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from core.redact import redact

TOKEN_COOKIE = "kleis_debug"
REFUSED_OPTIONS = frozenset({"scripts"})  # loading code through the UI is never allowed
REFUSED_COMMANDS = frozenset({"script.run", "options.load"})  # they load code or options from a file
TOKEN_REQUIRED = "open the UI with the URL printed by `kleis.py debug` (it carries the token)"


def redacted_bytes(data: bytes) -> bytes:
    text = data.decode("utf-8", "surrogateescape")
    cleaned = redact(text)
    return data if cleaned == text else cleaned.encode("utf-8", "surrogateescape")


def token_matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def refused_options(names: Iterable[str]) -> list[str]:
    """The options in an update that the UI may not change."""
    return sorted(REFUSED_OPTIONS & set(names))


def refused_command(command: str, arguments: list[object]) -> str | None:
    """Why a command run from the UI is refused, or None to let it run."""
    option = str(arguments[0]).split("=", 1)[0] if arguments else ""
    if command in REFUSED_COMMANDS:
        return f"Kleis's debug UI does not run {command!r}"
    if command == "set" and option in REFUSED_OPTIONS:
        return f"Kleis's debug UI does not run 'set' on {option!r}"
    return None
