"""What `kleis.py debug` lets mitmweb's UI show and do: redacted output, a per-run token, and an allowlist of
harmless actions (looking at flows, filtering them, intercepting and clearing); everything else is refused.

mitmweb's UI can change any option and run any command: add an `upstream:` listener (the next request would go
through a proxy of the UI user's choosing), write files (`export.file`, `save.file`, `save_stream_file`), load
code or flows, edit a flow and replay it. Plain functions; addons.compat wires them into mitmweb's handlers. The
allowlist names mitmweb's handler classes themselves, so a handler renamed in another mitmproxy fails at import.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from mitmproxy.tools.web import app

from core.redact import redact

TOKEN_COOKIE = "kleis_debug"
TOKEN_REQUIRED = "open the UI with the URL printed by `kleis.py debug` (it carries the token)"

# Options that only change what the UI shows, or hold flows for a look (intercept).
ALLOWED_OPTIONS = frozenset(
    {"view_filter", "view_order", "view_order_reversed", "intercept", "intercept_active", "showhost", "web_columns"}
)
# Commands that look, filter, mark, resume or kill intercepted flows, clear, and the UI's own command history.
ALLOWED_COMMANDS = frozenset(
    {
        "set",  # for an allowed option only (refused_command)
        "view.clear",
        "view.clear_unmarked",
        "view.filter.set",
        "view.order.set",
        "view.order.reverse",
        "view.order.options",
        "view.focus.go",
        "view.focus.next",
        "view.focus.prev",
        "view.properties.length",
        "view.properties.marked",
        "view.properties.inbounds",
        "flow.mark",
        "flow.mark.toggle",
        "flow.resume",
        "flow.kill",
        "eventstore.clear",
        "export",  # returns the export as text (redacted like everything the UI receives); export.file is refused
        "export.formats",
        "commands.history.get",
        "commands.history.add",
        "commands.history.clear",
        "commands.history.filter",
        "commands.history.next",
        "commands.history.prev",
    }
)
# (handler, method) pairs of mitmweb's REST API that change something and are allowed; every GET but those below
# is allowed too. Refused: PUT /flows/<id> and POST /flows/<id>/<message>/content (editing a flow),
# POST /flows/<id>/replay, POST /flows/dump (loading flows), /options/save.
ALLOWED_WRITES: frozenset[tuple[type, str]] = frozenset(
    {
        (app.ClearAll, "POST"),
        (app.ResumeFlows, "POST"),
        (app.KillFlows, "POST"),
        (app.ResumeFlow, "POST"),
        (app.KillFlow, "POST"),
        (app.FlowHandler, "DELETE"),
        (app.DuplicateFlow, "POST"),
        (app.RevertFlow, "POST"),
        (app.Options, "PUT"),  # allowlisted options only (refused_options)
        (app.ExecuteCommand, "POST"),  # allowlisted commands only (refused_command)
    }
)
REFUSED_READS: frozenset[type] = frozenset({app.ProcessList, app.ProcessImage})  # the machine's processes: not Kleis's business


def redacted_bytes(data: bytes) -> bytes:
    text = data.decode("utf-8", "surrogateescape")
    cleaned = redact(text)
    return data if cleaned == text else cleaned.encode("utf-8", "surrogateescape")


def token_matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def refused_request(handler: type, method: str) -> str | None:
    """Why a call of mitmweb's REST API is refused (by its handler class and method), or None to let it run."""
    method = method.upper()
    if method in ("GET", "HEAD"):
        return f"Kleis's debug UI does not show {handler.__name__}" if handler in REFUSED_READS else None
    if (handler, method) in ALLOWED_WRITES:
        return None
    return f"Kleis's debug UI only looks at flows: {method} on {handler.__name__} is refused (it could edit, replay, load or save)"


def refused_options(names: Iterable[str]) -> list[str]:
    """The options in an update that the UI may not change."""
    return sorted(set(names) - ALLOWED_OPTIONS)


def refused_command(command: str, arguments: list[object]) -> str | None:
    """Why a command run from the UI is refused, or None to let it run."""
    if command not in ALLOWED_COMMANDS:
        return f"Kleis's debug UI does not run {command!r} (allowed: {', '.join(sorted(ALLOWED_COMMANDS))})"
    option = str(arguments[0]).split("=", 1)[0] if arguments else ""
    if command == "set" and option not in ALLOWED_OPTIONS:
        return f"Kleis's debug UI does not run 'set' on {option!r} (allowed: {', '.join(sorted(ALLOWED_OPTIONS))})"
    return None
