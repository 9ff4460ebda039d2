"""Claude through a real Kleis listener: the official anthropic SDK on one side, a Claude-Code-only fake API on the other."""

from __future__ import annotations

import json
import time

import anthropic
import httpx
import pytest

from addons.services import Parts
from providers.claude import ClaudeProvider
from providers.claude.rewrite import IDENTITY_CLI
from store.accounts import AccountView
from store.models import Account
from tests.fakes.anthropic import anthropic_error
from tests.fakes.claude import CLAUDE_CODE_ONLY, version_floor
from tests.support.claude import CLAUDE_CODE_BODY, CLAUDE_CODE_HEADERS, ClaudeLive

READ_FILE = {
    "name": "read_file",
    "description": "read a file",
    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
}
BASH = {"name": "bash", "description": "run a command", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}
REQUIRED_BETAS = ["claude-code-20250219", "oauth-2025-04-20", "interleaved-thinking-2025-05-14"]


@pytest.fixture
def claude(live_kleis) -> ClaudeLive:
    return live_kleis(Parts(health=True), provider="claude", signals=True)


@pytest.fixture
def expiring(live_kleis) -> ClaudeLive:
    return live_kleis(Parts(health=True), provider="claude", signals=True, expires_in=3)  # too close to its end to be sent (VALID_MARGIN)


def test_the_fake_refuses_what_does_not_pass_as_claude_code(claude: ClaudeLive) -> None:
    direct = httpx.post(
        f"{claude.api.url}/v1/messages?beta=true",
        headers={
            "authorization": f"Bearer {claude.access_token}",
            "anthropic-beta": ",".join(REQUIRED_BETAS),
            "anthropic-version": "2023-06-01",
            "user-agent": "claude-cli/2.1.328 (external, cli)",
        },
        json={"model": "claude-sonnet-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert direct.status_code == 400 and direct.json()["error"]["message"] == CLAUDE_CODE_ONLY


def test_sdk_streams_tools_through_kleis_with_its_own_names(claude: ClaudeLive) -> None:
    client = claude.client()
    with client.messages.stream(
        model="claude-sonnet-5",
        max_tokens=64,
        system="You are OpenCode, the best coding agent on the planet.\n\nBe brief.",
        messages=[{"role": "user", "content": "read the readme"}],
        tools=[READ_FILE, BASH],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from fake Claude"
    assert [(b.name, b.input) for b in final.content if b.type == "tool_use"] == [("read_file", {"path": "README.md"})]
    assert final.usage.input_tokens == 12 and final.usage.cache_read_input_tokens == 100 and final.usage.output_tokens == 7

    seen = claude.api.last("/v1/messages")
    assert [t["name"] for t in seen.json["tools"]] == ["mcp_Read_file", "Bash"]
    # the caller's system prompt follows the identity block as it was written (Kleis does not hide what a client is)
    assert seen.json["system"] == [
        {"type": "text", "text": IDENTITY_CLI},
        {"type": "text", "text": "You are OpenCode, the best coding agent on the planet.\n\nBe brief."},
    ]
    assert seen.query == {"beta": "true"}
    assert seen.headers["authorization"] == f"Bearer {claude.access_token}"
    assert seen.headers["anthropic-beta"].split(",")[:3] == REQUIRED_BETAS
    assert seen.headers["user-agent"] == "claude-cli/2.1.328 (external, cli)" and seen.headers["x-app"] == "cli"
    assert "x-api-key" not in seen.headers and claude.key not in str(seen.headers)


def test_sdk_with_x_api_key_gets_json_tool_names_back_and_counts_tokens(claude: ClaudeLive) -> None:
    client = claude.client(api_key=claude.key, auth_token=None)
    message = client.messages.create(
        model="claude/claude-opus-5-5",
        max_tokens=32,
        messages=[{"role": "user", "content": "list files"}],
        tools=[BASH, READ_FILE],
        tool_choice={"type": "tool", "name": "bash"},
    )
    assert [b.name for b in message.content if b.type == "tool_use"] == ["bash"]
    seen = claude.api.last("/v1/messages").json
    assert seen["model"] == "claude-opus-5-5" and seen["tool_choice"] == {"type": "tool", "name": "Bash"}
    counted = client.messages.count_tokens(model="claude-sonnet-5", messages=[{"role": "user", "content": "hi"}], tools=[READ_FILE])
    assert counted.input_tokens == 42
    seen_count = claude.api.last("/v1/messages/count_tokens")
    assert seen_count.query == {"beta": "true"} and seen_count.json["tools"][0]["name"] == "mcp_Read_file"


def test_a_claude_code_request_reaches_the_api_unchanged(claude: ClaudeLive) -> None:
    headers = {**CLAUDE_CODE_HEADERS, "authorization": f"Bearer {claude.key}"}
    sent = json.dumps(CLAUDE_CODE_BODY, indent=1, ensure_ascii=True).encode()  # spacing and escapes of its own
    with httpx.stream("POST", f"{claude.proxy.url}/v1/messages?beta=true", headers=headers, content=sent, timeout=15) as response:
        body = b"".join(response.iter_bytes())
    assert response.status_code == 200 and b"message_stop" in body
    seen = claude.api.last("/v1/messages")
    assert seen.body == sent  # its very bytes: nothing changed, nothing re-encoded
    other = {**CLAUDE_CODE_BODY, "model": "claude/" + CLAUDE_CODE_BODY["model"]}  # a prefix Kleis removes: written anew
    assert httpx.post(f"{claude.proxy.url}/v1/messages?beta=true", headers=headers, json=other, timeout=15).status_code == 200
    assert claude.api.last("/v1/messages").json == CLAUDE_CODE_BODY and claude.api.last("/v1/messages").body != sent
    for name, value in CLAUDE_CODE_HEADERS.items():
        if name.lower() != "anthropic-beta":
            assert seen.headers[name.lower()] == value
    assert seen.headers["anthropic-beta"].split(",") == [
        *REQUIRED_BETAS,
        "context-management-2025-06-27",
        "prompt-caching-scope-2026-01-05",
    ]
    assert seen.headers["authorization"] == f"Bearer {claude.access_token}"


def test_a_large_claude_code_request_goes_unread_and_bad_bytes_in_it_are_still_refused(claude: ClaudeLive) -> None:
    from engine.pipeline import SPLIT_OFF_LOOP_BYTES

    headers = {**CLAUDE_CODE_HEADERS, "authorization": f"Bearer {claude.key}", "content-type": "application/json"}
    url = f"{claude.proxy.url}/v1/messages?beta=true"
    turns = [{"role": "user" if n % 2 == 0 else "assistant", "content": f"turn {n}: ünïcode ✓ " + "x = 1.25\n" * 60} for n in range(4001)]
    big = json.dumps({**CLAUDE_CODE_BODY, "messages": turns}, ensure_ascii=False).encode()
    assert len(big) > SPLIT_OFF_LOOP_BYTES  # read in part in a worker thread
    assert httpx.post(url, headers=headers, content=big, timeout=30).status_code == 200
    assert claude.api.last("/v1/messages").body == big
    sent = json.dumps(CLAUDE_CODE_BODY).encode()
    for bad in (b'"\xff"', b"NaN", b'"\\ud800"'):  # not UTF-8, not JSON, a lone surrogate: read whole, answered as before
        content = sent.replace(b'"messages": [', b'"messages": [' + bad + b", ", 1)
        refused = httpx.post(url, headers=headers, content=content, timeout=15)
        surrogate = bad.startswith(b'"\\')
        assert refused.status_code == (200 if surrogate else 400), refused.text  # Python's JSON reads a lone surrogate
        if surrogate:
            assert claude.api.last("/v1/messages").body == content
        else:
            assert "not valid JSON" in refused.json()["error"]["message"]
    unread_number = sent.replace(b'"messages": [', b'"messages": [1e999, ', 1)  # JSON; forwarded as sent, never written
    assert httpx.post(url, headers=headers, content=unread_number, timeout=15).status_code == 200
    assert claude.api.last("/v1/messages").body == unread_number
    rewritten = {**json.loads(sent), "model": "claude/" + CLAUDE_CODE_BODY["model"]}  # read whole: refused as before
    content = json.dumps(rewritten).encode().replace(b'"messages": [', b'"messages": [1e999, ', 1)
    assert httpx.post(url, headers=headers, content=content, timeout=15).status_code == 400
    assert len(claude.api.received()) == 3


def test_upstream_errors_pass_in_anthropic_shape_and_are_labelled(claude: ClaudeLive) -> None:
    reset = int(time.time()) + 1800
    limited = anthropic_error(429, "rate_limit_error", "Rate limited")
    limited.headers["anthropic-ratelimit-unified-reset"] = str(reset)
    claude.api.enqueue("POST", "/v1/messages", limited, anthropic_error(400, "invalid_request_error", CLAUDE_CODE_ONLY))
    client = claude.client()
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model="claude-sonnet-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert info.value.body["error"]["message"] == "Rate limited"
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="claude-sonnet-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    [(account_id, rate_limit), (_, refused)] = claude.health.signals
    assert account_id == claude.account_id
    assert (rate_limit.kind, rate_limit.reset_at, rate_limit.account_wide) == ("rate_limit", float(reset), True)
    assert (refused.kind, refused.account_wide) == ("request", False)


def test_an_expiring_token_is_refreshed_and_rotated_before_the_request(expiring: ClaudeLive, store) -> None:
    message = expiring.client().messages.create(model="claude-sonnet-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "Hello from fake Claude"
    used = expiring.api.last("/v1/messages").headers["authorization"].removeprefix("Bearer ")
    assert used != expiring.access_token and used in expiring.oauth.issued_access
    stored = AccountView.from_row(Account.get_by_id(expiring.account_id), store.cipher)
    assert stored.access_token == used and stored.refresh_token in expiring.oauth.live_refresh
    assert expiring.oauth.refresh_calls == 1


def test_a_version_floor_claude_does_not_name_is_for_the_setting(claude: ClaudeLive, config, run_proxy) -> None:
    claude.api.validators.append(version_floor({"claude-opus-5-5": "2.1.400"}, names_version=False))
    ask = {"model": "claude-opus-5-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(anthropic.BadRequestError, match="raise KLEIS_CLAUDE_CODE_VERSION") as caught:
        claude.client().messages.create(**ask)
    assert "does not support this model" in caught.value.message and len(claude.api.received("/v1/messages")) == 1  # no retry
    [(_, signal)] = claude.health.signals
    assert (signal.kind, signal.account_wide) == ("version", False) and signal.drift is not None and not signal.drift.retry
    newer = config.replace(claude_api_base=claude.api.url, claude_auth_base=claude.oauth.url, claude_code_version="2.1.400")
    proxy = run_proxy(newer, {"claude": ClaudeProvider(newer)})
    client = anthropic.Anthropic(base_url=proxy.url, auth_token=claude.key, api_key=None, max_retries=0)
    assert client.messages.create(**ask).content[0].text == "Hello from fake Claude"
    assert claude.api.last("/v1/messages").headers["user-agent"] == "claude-cli/2.1.400 (external, cli)"
