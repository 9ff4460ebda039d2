"""Claude's OAuth side as fakes: the API refusing requests that do not pass as Claude Code, the profile endpoint,
and an OAuth authority with Claude's client id that answers with the account identity."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import httpx

from tests.fakes.anthropic import FakeAnthropic, anthropic_error
from tests.fakes.base import Recorded, Reply
from tests.fakes.oauth import FakeOAuth

CLAUDE_CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
CLAUDE_CODE_ONLY = "This credential is only authorized for use with Claude Code and cannot be used for other API requests."
ACCOUNT = {"uuid": "6f1c6a57-0d3e-4a53-9b1e-1f0c2a7b9e01", "email_address": "ada@example.test"}
ORGANIZATION = {"uuid": "0b7f3a2c-5d4e-4f6a-8b9c-2d1e0f3a4b5c", "name": "Ada's Organization"}
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
IDENTITY_STARTS = (
    "You are Claude Code, Anthropic's official CLI for Claude.",
    "You are a Claude agent, built on Anthropic's Claude Agent SDK.",
)


def _betas(request: Recorded) -> list[str]:
    return [beta.strip() for beta in request.headers.get("anthropic-beta", "").split(",") if beta.strip()]


def _system_texts(body: dict[str, Any]) -> list[str]:
    system = body.get("system")
    if not isinstance(system, list):
        return []
    return [block.get("text", "") if isinstance(block, dict) else "" for block in system]


def has_claude_code_identity(body: dict[str, Any]) -> bool:
    texts = _system_texts(body)
    if texts and texts[0].startswith("x-anthropic-billing-header:"):
        return len(texts) > 1 and texts[1].startswith(IDENTITY_STARTS)
    return bool(texts) and texts[0].startswith(IDENTITY_STARTS)


def claude_code_only(request: Recorded) -> Reply | None:
    """The OAuth credential's rule: Bearer, the Claude Code and OAuth betas, ?beta=true, a claude-cli agent, the identity."""
    headers = request.headers
    passes = (
        "x-api-key" not in headers
        and headers.get("authorization", "").startswith("Bearer ")
        and {"oauth-2025-04-20", "claude-code-20250219"} <= set(_betas(request))
        and request.query.get("beta") == "true"
        and headers.get("user-agent", "").startswith("claude-cli/")
        and headers.get("anthropic-version") == "2023-06-01"
        and has_claude_code_identity(request.json)
    )
    return None if passes else anthropic_error(400, "invalid_request_error", CLAUDE_CODE_ONLY)


def tool_names_valid(request: Recorded) -> Reply | None:
    """The API's own rule for custom tool names: [a-zA-Z0-9_-]{1,64}, unique."""
    names = [tool.get("name", "") for tool in request.json.get("tools") or [] if "type" not in tool or tool["type"] == "custom"]
    for index, name in enumerate(names):
        if not TOOL_NAME.match(name):
            return anthropic_error(
                400, "invalid_request_error", f"tools.{index}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            )
    if len(set(names)) != len(names):
        return anthropic_error(400, "invalid_request_error", "tools: Tool names must be unique.")
    return None


def version_too_old(message: str) -> Reply:
    """The API's answer for a client version below a model's floor (2026-09 reports: details.error_code names it)."""
    reply = anthropic_error(400, "invalid_request_error", message)
    reply.body["error"]["details"] = {"error_code": "claude_code_version_too_old"}
    return reply


def version_floor(floors: dict[str, str], names_version: bool = True) -> Callable[[Recorded], Reply | None]:
    """Models that refuse older Claude Code versions (read from the user-agent), as the API does since 2026."""

    def parse(version: str) -> tuple[int, ...]:
        return tuple(int(part) for part in version.split("."))

    def check(request: Recorded) -> Reply | None:
        floor = floors.get(request.json.get("model", ""))
        match = re.match(r"claude-cli/(\d+\.\d+\.\d+)", request.headers.get("user-agent", ""))
        if floor is None or (match and parse(match.group(1)) >= parse(floor)):
            return None
        used = match.group(1) if match else "unknown"
        if not names_version:
            return version_too_old(f"Claude Code {used} does not support this model. Run 'claude update', then try again.")
        return version_too_old(
            f"Claude Code {used} does not support this model; version {floor} or newer is required. "
            "Run 'claude update', or update the Claude desktop app, then try again."
        )

    return check


THIRD_PARTY = "Third-party apps now draw from your extra usage, not your plan limits. Add more at claude.ai/settings/usage and keep going."
LONG_CONTEXT = "Extra usage is required for long context requests."


def third_party_billing(request: Recorded) -> Reply | None:
    """An account without extra usage since 2026-04: traffic that is not Claude Code's own is refused. What tells them
    apart is Anthropic's business; this fake takes Claude Code's billing attestation block, which Kleis never forges."""
    texts = _system_texts(request.json)
    if texts and texts[0].startswith("x-anthropic-billing-header:"):
        return None
    return anthropic_error(400, "invalid_request_error", THIRD_PARTY)


def long_context_billing(request: Recorded) -> Reply | None:
    """The 1M-context beta on an account without extra usage: 429, with the plan's window headers (it is not a limit)."""
    if "context-1m-2025-08-07" not in _betas(request):
        return None
    reply = anthropic_error(429, "rate_limit_error", LONG_CONTEXT)
    reply.headers.update({"anthropic-ratelimit-unified-status": "allowed", "anthropic-ratelimit-unified-reset": "4102444800"})
    return reply


class FakeClaudeAPI(FakeAnthropic):
    """FakeAnthropic behind Claude's OAuth rules, with GET /api/oauth/profile for valid tokens."""

    def __init__(self, valid_tokens: set[str]) -> None:
        super().__init__(valid_tokens=valid_tokens)
        self.validators += [claude_code_only, tool_names_valid]
        self.profile: dict[str, Any] = {
            "account": {"uuid": ACCOUNT["uuid"], "email": ACCOUNT["email_address"]},
            "organization": dict(ORGANIZATION),
        }
        self.route("GET", "/api/oauth/profile", self.profile_answer)

    def profile_answer(self, request: Recorded) -> Reply:
        return self._auth(request) or Reply(200, self.profile)


MIN_STATE_LENGTH = 43  # 32 bytes as base64url: shorter states are refused (2026-08/09 reports, issue 35)


def authorize_page(fake: FakeOAuth) -> Callable[[Recorded], Reply]:
    """Claude's authorize page (GET /oauth/authorize) as a person sees it after approving: it shows `code#state` to
    copy. Like the real page, it refuses a request whose `state` is shorter than 32 bytes with "Invalid request format"."""

    def page(request: Recorded) -> Reply:
        query = request.query
        state = query.get("state", "")
        if (
            len(state) < MIN_STATE_LENGTH
            or query.get("response_type") != "code"
            or query.get("code_challenge_method") != "S256"
            or not query.get("code_challenge")
        ):
            return Reply(400, "<html><body><p>Invalid request format</p></body></html>", {"content-type": "text/html"})
        code = fake.authorize(challenge=query["code_challenge"], redirect_uri=query["redirect_uri"], client_id=query.get("client_id"))
        pasted = f"<code id='pasted-code'>{html.escape(code)}#{html.escape(state)}</code>"
        return Reply(200, f"<html><body><p>Paste this code into the application:</p>{pasted}</body></html>", {"content-type": "text/html"})

    return page


def claude_oauth(account: dict[str, str] | None = None) -> FakeOAuth:
    """A FakeOAuth with Claude's client id whose token answers name the account and organization, and Claude's
    authorize page at GET /oauth/authorize."""
    fake = FakeOAuth(client_id=CLAUDE_CLIENT_ID)
    fake.extra = {"account": dict(account or ACCOUNT), "organization": dict(ORGANIZATION), "scope": "user:inference user:profile"}
    fake.route("GET", "/oauth/authorize", authorize_page(fake))
    return fake


def pasted_code(authorize_url: str) -> str:
    """Play the browser on the fake's authorize page: approve, and copy the `code#state` it shows."""
    answer = httpx.get(authorize_url, timeout=10, trust_env=False)
    assert answer.status_code == 200, answer.text
    match = re.search(r"<code id='pasted-code'>([^<]+)</code>", answer.text)
    assert match, answer.text
    return html.unescape(match.group(1))
