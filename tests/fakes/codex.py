"""A fake ChatGPT Codex backend (`<base>/responses`) that enforces the real backend's request rules.

Rules and error bodies follow public reports (CLIProxyAPI's Codex executor, pi-mono, OpenCode issues): FastAPI-style
`{"detail": "…"}` bodies for bad requests, 429 `usage_limit_reached` with `resets_at`, Responses events only
as a stream. The rejected-parameter list is written out here on purpose, independently of the provider's.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import json
import time
from typing import Any

from tests.fakes.base import FakeServer, Recorded, Reply, Stream, sse
from tests.fakes.codex_auth import AUTH_CLAIM

_ids = itertools.count(1)

# Refused with 400 "Unsupported parameter: <name>" (max_output_tokens is the one seen most in reports).
REJECTED_PARAMETERS = (
    "max_output_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "truncation",
    "user",
    "previous_response_id",
    "stream_options",
    "prompt_cache_retention",
    "safety_identifier",
    "generate",
    "prompt_cache_options",
    "context_management",
)
REJECTED_PART_FIELDS = ("prompt_cache_breakpoint",)  # inside input[].content[]

# The client-version gate (public reports, July–November 2026): models by prefix, and the oldest Codex CLI they accept.
VERSION_FLOORS = (("gpt-6-astra", "0.153.0"), ("gpt-6-", "0.155.0"), ("gpt-5.6-", "0.144.0"))


EMPTY_PART = {"type": "output_text", "text": "", "annotations": []}


UPGRADE = "Please upgrade to the latest app or CLI and try again."


def detail(status: int, message: str) -> Reply:
    return Reply(status, {"detail": message})


def version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return (0,)


def client_version(headers: dict[str, str]) -> str:
    """The version a request names: its `version` header, else the one in a `<originator>/<version> (…)` user-agent."""
    agent = headers.get("user-agent", "")
    return headers.get("version") or (agent.partition("/")[2].split(" ", 1)[0] if "/" in agent else "")


def too_old(model: str, version: str) -> bool:
    floor = next((floor for prefix, floor in VERSION_FLOORS if model.startswith(prefix)), None)
    return floor is not None and version_tuple(version) < version_tuple(floor)


def refused_part_field(items: list[Any]) -> str | None:
    for i, item in enumerate(items):
        content = item.get("content") if isinstance(item, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else []):
            for name in REJECTED_PART_FIELDS:
                if isinstance(part, dict) and name in part:
                    return f"input[{i}].content[{j}].{name}"
    return None


def claims_of(token: str) -> dict[str, Any]:
    try:
        segment = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (IndexError, ValueError):
        return {}


@dataclasses.dataclass
class StreamPlan:
    """How the next streams look (tests change these fields)."""

    empty_final_output: bool = False  # response.completed with "output": []
    interleaved: bool = False  # reasoning + message + function call, deltas interleaved, done events out of order
    final_event: str = "response.completed"  # or response.done / response.incomplete
    error: dict[str, Any] | None = None  # an error object sent inside the 200 stream instead of the end
    error_style: str = "bare"  # bare: data {"error": {…}}; event: `event: error` with a Responses error event
    failed: dict[str, Any] | None = None  # end with response.failed carrying this error
    reasoning: tuple[str, ...] = ()  # summary parts: the answer starts with a reasoning item


class FakeCodex(FakeServer):
    def __init__(self, valid_tokens: set[str] | None = None, prefix: str = "/backend-api/codex") -> None:
        super().__init__()
        self.prefix = prefix
        self.valid_tokens = valid_tokens if valid_tokens is not None else set()
        self.plan = StreamPlan()
        self.text_chunks = ["Hi", " there"]
        self.usage = {
            "input_tokens": 120,
            "input_tokens_details": {"cached_tokens": 100},
            "output_tokens": 30,
            "output_tokens_details": {"reasoning_tokens": 12},
            "total_tokens": 150,
        }
        self.issued: dict[str, str] = {}  # encrypted reasoning blob → the ChatGPT account it was made for
        self.route("POST", f"{prefix}/responses", self.responses)

    @property
    def base(self) -> str:
        return self.url + self.prefix

    @staticmethod
    def usage_limit(resets_at: int, plan_type: str = "plus") -> Reply:
        return Reply(
            429,
            {
                "error": {
                    "type": "usage_limit_reached",
                    "message": "The usage limit has been reached",
                    "plan_type": plan_type,
                    "resets_at": resets_at,
                    "resets_in_seconds": max(0, resets_at - int(time.time())),
                }
            },
        )

    # -- the backend's rules ------------------------------------------------------------------
    def check(self, request: Recorded) -> Reply | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if token not in self.valid_tokens:
            return detail(401, "Could not parse your authentication token. Please try signing in again.")
        account = request.headers.get("chatgpt-account-id")
        if not account:
            return detail(400, "Missing chatgpt-account-id header")  # wording not from a source
        if account != (claims_of(token).get(AUTH_CLAIM) or {}).get("chatgpt_account_id"):
            return detail(403, "chatgpt-account-id does not match the token")  # wording not from a source
        body = request.json if request.body else None
        if not isinstance(body, dict):
            return detail(400, "Invalid request body")
        for name in REJECTED_PARAMETERS:
            if name in body:
                return detail(400, f"Unsupported parameter: {name}")
        if body.get("service_tier") not in (None, "priority"):
            return detail(400, f"Unsupported service_tier: {body['service_tier']}")
        if not isinstance(body.get("instructions"), str):
            return detail(400, "Instructions are required")
        if body.get("store") is not False:
            return detail(400, "Store must be set to false")
        if body.get("stream") is not True:
            return detail(400, "Stream must be set to true")
        if not isinstance(body.get("input"), list):
            return detail(400, "Input must be a list")
        if any(isinstance(item, dict) and item.get("role") == "system" for item in body["input"]):
            return detail(400, "System messages are not allowed")
        nested = refused_part_field(body["input"])
        if nested is not None:
            return detail(400, f"Unsupported parameter: {nested}")
        for index, item in enumerate(body["input"]):
            if isinstance(item, dict) and item.get("type") == "reasoning":
                refusal = self.check_reasoning(index, item, account)
                if refusal is not None:
                    return refusal
        model = str(body.get("model") or "")
        if too_old(model, client_version(request.headers)):
            return detail(400, f"The '{model}' model requires a newer version of Codex. {UPGRADE}")
        return None

    def check_reasoning(self, index: int, item: dict[str, Any], account: str) -> Reply | None:
        """A reasoning item sent back: it needs its summary list, and its blob must be one this backend made for
        this account (openai/codex#8119; blobs are bound to the account: Wei-Shaw/sub2api#3038)."""
        if not isinstance(item.get("summary"), list):
            return Reply(
                400, {"error": {"message": f"Missing required parameter: 'input[{index}].summary'.", "type": "invalid_request_error"}}
            )
        blob = item.get("encrypted_content")
        if not isinstance(blob, str) or self.issued.get(blob) != account:
            message = f"The encrypted content {str(blob)[:12]}… could not be verified."
            error = {"message": message, "type": "invalid_request_error", "param": None, "code": "invalid_encrypted_content"}
            return Reply(400, {"error": error})
        return None

    def responses(self, request: Recorded) -> Reply | Stream:
        refusal = self.check(request)
        if refusal is not None:
            return refusal
        return Stream(self.events(request.json, request.headers.get("chatgpt-account-id", "")))

    def reasoning_events(self, event: Any, account: str) -> tuple[list[bytes], dict[str, Any]]:
        """A reasoning item as the backend streams it: its summary parts piece by piece, its encrypted content at
        its end (a blob this fake remembers, bound to `account`)."""
        item_id = f"rs_codex{next(_ids)}"
        blob = "gAAAAB" + base64.urlsafe_b64encode(f"{account}:{item_id}".encode()).decode()
        self.issued[blob] = account
        summary = [{"type": "summary_text", "text": text} for text in self.plan.reasoning]
        item = {"type": "reasoning", "id": item_id, "summary": summary, "encrypted_content": blob}
        out = [event("response.output_item.added", output_index=0, item={"type": "reasoning", "id": item_id, "summary": []})]
        for index, text in enumerate(self.plan.reasoning):
            where = {"item_id": item_id, "output_index": 0, "summary_index": index}
            out.append(event("response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""}))
            half = len(text) // 2
            out += [event("response.reasoning_summary_text.delta", **where, delta=piece) for piece in (text[:half], text[half:]) if piece]
            out.append(event("response.reasoning_summary_text.done", **where, text=text))
            out.append(event("response.reasoning_summary_part.done", **where, part={"type": "summary_text", "text": text}))
        out.append(event("response.output_item.done", output_index=0, item=item))
        return out, item

    # -- streams --------------------------------------------------------------------------------
    def response_object(self, body: dict[str, Any], response_id: str, status: str, output: list[Any], usage: Any) -> dict[str, Any]:
        return {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": body.get("model"),
            "output": output,
            "usage": usage,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "tools": body.get("tools", []),
            "parallel_tool_calls": bool(body.get("parallel_tool_calls")),
            "tool_choice": "auto",
            "store": False,
            "metadata": {},
            "text": {"format": {"type": "text"}},
        }

    def events(self, body: dict[str, Any], account: str = "") -> list[bytes]:
        plan = self.plan
        seq = itertools.count()
        response_id = f"resp_codex{next(_ids)}"

        def event(kind: str, **fields: Any) -> bytes:
            return sse(kind, {"type": kind, "sequence_number": next(seq), **fields})

        message = {
            "type": "message",
            "id": f"msg_codex{next(_ids)}",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "".join(self.text_chunks), "annotations": []}],
        }
        out = [event("response.created", response=self.response_object(body, response_id, "in_progress", [], None))]
        if plan.interleaved:
            reasoning = {"type": "reasoning", "id": f"rs_codex{next(_ids)}", "summary": [], "encrypted_content": "gAAAA-opaque"}
            call = {
                "type": "function_call",
                "id": f"fc_codex{next(_ids)}",
                "call_id": "call_1",
                "name": "read_file",
                "arguments": '{"path":"README.md"}',
                "status": "completed",
            }
            items = [reasoning, message, call]
            out += [
                event(
                    "response.output_item.added",
                    output_index=i,
                    item=dict(item, status="in_progress", **({"content": []} if item is message else {})),
                )
                for i, item in enumerate(items)
            ]
            out.append(event("response.content_part.added", item_id=message["id"], output_index=1, content_index=0, part=EMPTY_PART))
            out.append(
                event("response.output_text.delta", item_id=message["id"], output_index=1, content_index=0, delta=self.text_chunks[0])
            )
            out.append(event("response.function_call_arguments.delta", item_id=call["id"], output_index=2, delta=call["arguments"]))
            out += [
                event("response.output_text.delta", item_id=message["id"], output_index=1, content_index=0, delta=c)
                for c in self.text_chunks[1:]
            ]
            out += [event("response.output_item.done", output_index=i, item=items[i]) for i in (2, 0, 1)]  # out of order
        else:
            items = [message]
            if plan.reasoning:  # a reasoning model reasons whether or not the request says how much
                reasoning_events, reasoning_item = self.reasoning_events(event, account)
                out += reasoning_events
                items = [reasoning_item, message]
            out.append(event("response.output_item.added", output_index=0, item=dict(message, status="in_progress", content=[])))
            out.append(event("response.content_part.added", item_id=message["id"], output_index=0, content_index=0, part=EMPTY_PART))
            out += [
                event("response.output_text.delta", item_id=message["id"], output_index=0, content_index=0, delta=c)
                for c in self.text_chunks
            ]
            if plan.error is not None:
                if plan.error_style == "bare":
                    out.append(sse(None, {"error": plan.error}))
                else:
                    out.append(event("error", code=plan.error.get("code"), message=plan.error.get("message"), param=None))
                return out
            out.append(
                event("response.output_text.done", item_id=message["id"], output_index=0, content_index=0, text="".join(self.text_chunks))
            )
            out.append(
                event("response.content_part.done", item_id=message["id"], output_index=0, content_index=0, part=message["content"][0])
            )
            out.append(event("response.output_item.done", output_index=0, item=message))
        if plan.failed is not None:
            failed = self.response_object(body, response_id, "failed", [], None)
            failed["error"] = plan.failed
            out.append(event("response.failed", response=failed))
            return out
        status = "incomplete" if plan.final_event == "response.incomplete" else "completed"
        final = self.response_object(body, response_id, status, [] if plan.empty_final_output else items, dict(self.usage))
        if status == "incomplete":
            final["incomplete_details"] = {"reason": "max_output_tokens"}
        out.append(event(plan.final_event, response=final))
        return out
