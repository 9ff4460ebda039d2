"""One JSON Responses object built from a whole Codex stream, for clients that did not ask for a stream."""

from __future__ import annotations

import dataclasses
from typing import Any

from core.client_errors import error_payload
from core.protocol import Protocol
from core.sse import SSEEvent
from providers.codex.errors import code_of, error_object, status_for
from providers.codex.stream import CodexState

# Codex ends a stream with any of these; all three carry the whole response (PI treats them alike).
FINAL_EVENTS = frozenset({"response.completed", "response.done", "response.incomplete"})
ERROR_EXTRAS = ("plan_type", "resets_at", "resets_in_seconds")


@dataclasses.dataclass
class StreamSummary:
    """What a stream said, event by event."""

    response: dict[str, Any] | None = None  # the latest response object (created, in_progress)
    final: dict[str, Any] | None = None
    final_kind: str = ""
    error: dict[str, Any] | None = None
    items: list[tuple[float, int, dict[str, Any]]] = dataclasses.field(default_factory=list)  # (output_index, arrival, item)

    def output(self) -> list[dict[str, Any]]:
        """The finished output items in output_index order (items without an index last, as they came)."""
        latest: dict[float, tuple[int, dict[str, Any]]] = {}
        for index, arrival, item in self.items:
            latest[index] = (arrival, item)  # a repeated index: the later item wins
        return [item for _, (_, item) in sorted(latest.items(), key=lambda entry: (entry[0], entry[1][0]))]


def _index(value: Any, arrival: int) -> float:
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return 1e12 + arrival  # unindexed items go last, in the order they came


def summarise(events: list[SSEEvent]) -> StreamSummary:
    summary = StreamSummary()
    for arrival, event in enumerate(events):
        data = event.json()
        if not isinstance(data, dict):
            continue
        kind = event.event or data.get("type")
        response = data.get("response") if isinstance(data.get("response"), dict) else None
        if kind in FINAL_EVENTS and response is not None:
            summary.final, summary.final_kind = response, str(kind)
        elif kind in ("response.created", "response.in_progress") and response is not None:
            summary.response = response
        elif kind == "response.output_item.done" and isinstance(data.get("item"), dict):
            summary.items.append((_index(data.get("output_index"), arrival), arrival, data["item"]))
        elif kind == "response.failed" or kind == "error" or (not str(kind or "").startswith("response.") and data.get("error")):
            summary.error = summary.error or error_object(data) or {"code": "response_failed"}
    return summary


def completed_body(summary: StreamSummary) -> dict[str, Any]:
    assert summary.final is not None
    body = dict(summary.final)
    if not body.get("output"):
        body["output"] = summary.output()  # response.completed may arrive with an empty output (CPA c8b7e2b8d)
    if summary.final_kind == "response.done" and not body.get("status"):
        body["status"] = "completed"
    body.setdefault("object", "response")
    return body


def error_body(error: dict[str, Any], status: int) -> dict[str, Any]:
    """An upstream error in OpenAI's error shape, keeping the fields that say when a limit ends."""
    message = str(error.get("message") or "the Codex backend reported an error inside its stream")
    kind = error.get("type") if isinstance(error.get("type"), str) else None
    payload = error_payload(Protocol.RESPONSES, status, f"upstream error: {message}", code=code_of(error), type_=kind)
    payload["error"].update({name: error[name] for name in ERROR_EXTRAS if error.get(name) is not None})
    return payload


def aggregate_events(events: list[SSEEvent], state: CodexState | None = None) -> tuple[int, dict[str, Any]]:
    """(status, body): the final response (output rebuilt when empty), else the stream's error, else 502."""
    summary = summarise(events)
    if summary.final is not None:
        return 200, completed_body(summary)
    if summary.error is not None:
        if state is not None:
            state.note_error(summary.error)
        status = status_for(summary.error)
        return status, error_body(summary.error, status)
    incomplete = {"code": "stream_incomplete", "message": "the Codex stream ended before response.completed"}
    if state is not None:
        state.note_error(incomplete)
    return 502, error_body(incomplete, 502)
