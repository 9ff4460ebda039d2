"""Golden tests of the Claude request rewrite: URL, headers, system identity, OpenCode text, tool names."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.protocol import Protocol
from providers.base import ForwardRequest, Upstream
from providers.claude import ClaudeProvider
from providers.claude.rewrite import IDENTITY_AGENT_SDK, IDENTITY_CLI
from providers.claude.tools import rename_request_tools, upstream_name
from tests.support.claude import CLAUDE_CODE_BODY, CLAUDE_CODE_HEADERS, TOKEN_REF, account, tool

IDENTITY = {"type": "text", "text": IDENTITY_CLI}


def prepare(config, body: dict[str, Any], headers: dict[str, str] | None = None, path: str = "/v1/messages", query: str = "") -> Upstream:
    request = ForwardRequest(
        protocol=Protocol.MESSAGES,
        path=path,
        query=query,
        headers=headers or {},
        body=copy.deepcopy(body),
        model=body.get("model", "claude-sonnet-5"),
        account=account(),
        token_ref=TOKEN_REF,
        stream=False,
        raw_body=json.dumps(body).encode(),  # as received: the rewrite looks in it for tool_reference blocks
    )
    return ClaudeProvider(config).prepare(request)


def request(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}], **fields}


# -- URL and headers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "expected"),
    [
        ("/v1/messages", "", "/v1/messages?beta=true"),
        ("/v1/messages", "beta=true", "/v1/messages?beta=true"),
        ("/v1/messages", "foo=1&bar=a%20b", "/v1/messages?foo=1&bar=a%20b&beta=true"),
        ("/v1/messages", "beta=false&foo=1", "/v1/messages?beta=true&foo=1"),
        ("/v1/messages/count_tokens", "", "/v1/messages/count_tokens?beta=true"),
    ],
)
def test_url_has_beta_true_and_keeps_other_parameters(config, path: str, query: str, expected: str) -> None:
    upstream = prepare(config, request(), path=path, query=query)
    assert upstream.url == config.claude_api_base + expected


def test_headers_for_a_generic_client(config) -> None:
    config = config.replace(claude_extra_betas="context-management-2025-06-27, oauth-2025-04-20")
    upstream = prepare(
        config,
        request(),
        {"Anthropic-Beta": "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14", "User-Agent": "Anthropic/Python 0.125.0"},
    )
    assert upstream.headers == {
        "authorization": f"Bearer {TOKEN_REF}",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,"
        "context-management-2025-06-27,prompt-caching-2024-07-31",
        "user-agent": f"claude-cli/{config.claude_code_version} (external, cli)",
        "x-app": "cli",
    }
    assert set(upstream.drop_headers) >= {"x-api-key"}


def test_client_anthropic_version_is_kept(config) -> None:
    upstream = prepare(config, request(), {"anthropic-version": "2023-01-01"})
    assert "anthropic-version" not in upstream.headers


# -- system identity ------------------------------------------------------------------------------


def test_absent_system_gets_the_identity(config) -> None:
    assert prepare(config, request()).body["system"] == [IDENTITY]


def test_string_system_becomes_blocks_after_the_identity(config) -> None:
    body = prepare(config, request(system="Be terse.")).body
    assert body["system"] == [IDENTITY, {"type": "text", "text": "Be terse."}]


def test_array_system_keeps_the_callers_blocks_and_cache_control(config) -> None:
    system = [{"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}, "plain string"]
    body = prepare(config, request(system=system)).body
    assert body["system"] == [IDENTITY, system[0], {"type": "text", "text": "plain string"}]


@pytest.mark.parametrize(
    "system",
    [
        [{"type": "text", "text": IDENTITY_CLI}, {"type": "text", "text": "More."}],
        [{"type": "text", "text": "Preamble."}, {"type": "text", "text": IDENTITY_AGENT_SDK}],
        [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.328.abc; cc_entrypoint=sdk-cli; cch=00000;"},
            {"type": "text", "text": IDENTITY_AGENT_SDK, "cache_control": {"type": "ephemeral"}},
        ],
        IDENTITY_CLI + "\n\nAnd the rest.",
    ],
)
def test_a_present_identity_is_left_as_it_is(config, system: Any) -> None:
    assert prepare(config, request(system=system)).body["system"] == system


def test_identity_after_the_second_block_does_not_count(config) -> None:
    system = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}, {"type": "text", "text": IDENTITY_CLI}]
    assert prepare(config, request(system=system)).body["system"] == [IDENTITY, *system]


# -- the caller's system prompt ---------------------------------------------------------------------

OPENCODE_PROMPT = (
    "You are OpenCode, the best coding agent on the planet.\n\n"
    "If the user asks for help, see https://opencode.ai/docs for details.\n\n"
    "Here is some useful information about the environment you are running in:\n"
    "<env>\n  Working directory: /home/ada/src/opencode-plugins\n</env>"
)


def test_the_callers_system_prompt_follows_the_identity_exactly_as_sent(config) -> None:
    """Kleis does not hide or rewrite what a client's prompt says about it to get past Anthropic's classification of
    third-party traffic: OpenCode's prompt reaches Claude word for word, after the identity block."""
    block = {"type": "text", "text": OPENCODE_PROMPT, "cache_control": {"type": "ephemeral"}}
    assert prepare(config, request(system=[block])).body["system"] == [IDENTITY, block]
    with_identity = [IDENTITY, {"type": "text", "text": "You are OpenCode, an agent."}]
    assert prepare(config, request(system=with_identity)).body["system"] == with_identity


def test_no_billing_attestation_is_forged(config) -> None:
    """Only real Claude Code carries its `x-anthropic-billing-header … cch=` block; Kleis never writes one."""
    body = prepare(config, request(system="Be brief.", messages=[{"role": "user", "content": "hi"}])).body
    texts = [block["text"] for block in body["system"]]
    assert texts == [IDENTITY_CLI, "Be brief."] and not any("billing-header" in text or "cch=" in text for text in texts)


def test_messages_are_passed_as_they_are(config) -> None:
    body = request(messages=[{"role": "user", "content": "You are OpenCode? opencode.ai/docs"}])
    assert prepare(config, body).body["messages"] == body["messages"]


# -- tool names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sent"),
    [
        ("read", "Read"),
        ("BASH", "Bash"),
        ("todowrite", "TodoWrite"),
        ("webfetch", "WebFetch"),
        ("Task", "Task"),
        ("askuserquestion", "AskUserQuestion"),
        ("mcp_github_search", "mcp_github_search"),
        ("mcp__server__tool", "mcp__server__tool"),
        ("read_file", "mcp_Read_file"),
        ("question", "mcp_Question"),
        ("list", "mcp_List"),
        ("x", "mcp_X"),
    ],
)
def test_tool_name_rule(name: str, sent: str) -> None:
    assert upstream_name(name) == sent


def test_tools_history_and_tool_choice_are_renamed(config) -> None:
    body = request(
        tools=[tool("read"), tool("read_file"), tool("mcp_Search")],
        tool_choice={"type": "tool", "name": "read_file"},
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "ok"}, {"type": "tool_use", "id": "t1", "name": "read", "input": {}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "data"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t2", "name": "read_file", "input": {"p": 1}}]},
        ],
    )
    upstream = prepare(config, body)
    sent = upstream.body
    assert [t["name"] for t in sent["tools"]] == ["Read", "mcp_Read_file", "mcp_Search"]
    assert sent["tool_choice"] == {"type": "tool", "name": "mcp_Read_file"}
    assert sent["messages"][1]["content"][1]["name"] == "Read"
    assert sent["messages"][3]["content"][0]["name"] == "mcp_Read_file"
    assert sent["messages"][2] == body["messages"][2]
    assert upstream.state.names.renamed == {"Read": "read", "mcp_Read_file": "read_file"}


@pytest.mark.parametrize("choice", [{"type": "auto"}, {"type": "any"}, {"type": "none"}])
def test_other_tool_choices_are_untouched(config, choice: dict) -> None:
    assert prepare(config, request(tools=[tool("read")], tool_choice=choice)).body["tool_choice"] == choice


def test_typed_server_tools_are_untouched_also_in_history(config) -> None:
    typed = [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
        {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
        {"type": "bash_20250124", "name": "bash"},
        {"type": "computer_20250124", "name": "computer", "display_width_px": 1024, "display_height_px": 768},
        {"type": "code_execution_20250825", "name": "code_execution"},
    ]
    history = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "t1", "name": "bash", "input": {"command": "ls"}},
                {"type": "server_tool_use", "id": "s1", "name": "web_search", "input": {"query": "x"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a"}]},
    ]
    body = request(tools=[*typed, {**tool("grep"), "type": "custom"}], messages=history, tool_choice={"type": "tool", "name": "bash"})
    sent = prepare(config, body).body
    assert sent["tools"][:5] == typed
    assert sent["tools"][5]["name"] == "Grep"
    assert sent["messages"] == history
    assert sent["tool_choice"] == {"type": "tool", "name": "bash"}


def test_long_names_are_shortened_deterministically_and_restored(config) -> None:
    long_a = "a_very_long_tool_name_from_some_mcp_server_that_goes_on_and_on_1"
    long_b = "a_very_long_tool_name_from_some_mcp_server_that_goes_on_and_on_2"
    body = request(
        tools=[tool(long_a), tool(long_b)],
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": long_b, "input": {}}]},
        ],
    )
    first, second = prepare(config, body), prepare(config, body)
    names = [t["name"] for t in first.body["tools"]]
    assert all(len(name) <= 64 and name.startswith("mcp_A_very_long") for name in names)
    assert len(set(names)) == 2 and names == [t["name"] for t in second.body["tools"]]
    assert first.body["messages"][1]["content"][0]["name"] == names[1]
    assert first.state.names.restore(names[0]) == long_a and first.state.names.restore(names[1]) == long_b


def test_names_that_would_meet_stay_distinct(config) -> None:
    upstream = prepare(config, request(tools=[tool("Read"), tool("read")]))
    names = [t["name"] for t in upstream.body["tools"]]
    assert names[0] == "Read" and names[1] != "Read" and len(names[1]) <= 64
    assert [upstream.state.names.restore(n) for n in names] == ["Read", "read"]


VALID_NAME = r"[a-zA-Z0-9_-]{1,64}"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.from_regex(VALID_NAME, fullmatch=True), st.sampled_from(["read", "Read", "BASH", "bash", "mcp_Foo", "foo"])),
        min_size=1,
        max_size=8,
        unique=True,
    )
)
def test_any_tool_names_stay_valid_distinct_restorable_and_stable(names: list[str]) -> None:
    body = {"tools": [tool(name) for name in names], "messages": []}
    mapping = rename_request_tools(body)
    sent = [t["name"] for t in body["tools"]]
    assert len(set(sent)) == len(sent)
    assert all(re.fullmatch(VALID_NAME, name) for name in sent)
    assert [mapping.restore(name) for name in sent] == names
    assert rename_request_tools(body).renamed == {} and [t["name"] for t in body["tools"]] == sent


def test_tool_reference_blocks_in_history_are_renamed(config) -> None:
    body = request(
        tools=[tool("deploy")],
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "server_tool_use", "id": "s", "name": "tool_search_tool_regex", "input": {}}]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "x", "content": [{"type": "tool_reference", "tool_name": "deploy"}]}],
            },
        ],
    )
    sent = prepare(config, body).body
    assert sent["messages"][2]["content"][0]["content"][0] == {"type": "tool_reference", "tool_name": "mcp_Deploy"}
    nested = request(
        tools=[tool("deploy")],
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        **body["messages"][2]["content"][0],
                        "content": {"tool_references": [{"type": "tool_reference", "tool_name": "deploy"}]},
                    }
                ],
            }
        ],
    )
    assert prepare(config, nested).body["messages"][0]["content"][0]["content"]["tool_references"][0]["tool_name"] == "mcp_Deploy"


# -- idempotence and Claude Code passing through --------------------------------------------------------


def test_rewriting_a_rewritten_request_changes_nothing(config) -> None:
    body = request(
        system=[{"type": "text", "text": OPENCODE_PROMPT}],
        tools=[tool("read"), tool("read_file"), tool("x" * 70), {"type": "web_search_20250305", "name": "web_search"}],
        tool_choice={"type": "tool", "name": "read"},
        messages=[
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "read_file", "input": {}}]},
        ],
    )
    headers = {"anthropic-beta": "files-api-2025-04-14", "user-agent": "opencode/1.3"}
    once = prepare(config, body, headers, query="x=1")
    sent_once = {**headers, **once.headers}  # what goes upstream: the client's headers with the provider's on top
    twice = prepare(config, once.body, sent_once, query=once.url.partition("?")[2])
    assert twice.body == once.body
    assert twice.url == once.url
    assert {**sent_once, **twice.headers} == sent_once
    assert twice.state.names.renamed == {}


def test_a_claude_code_request_passes_unchanged_except_auth_betas_and_query(config) -> None:
    upstream = prepare(config, CLAUDE_CODE_BODY, CLAUDE_CODE_HEADERS, query="beta=true")
    assert upstream.body == CLAUDE_CODE_BODY
    assert upstream.url == f"{config.claude_api_base}/v1/messages?beta=true"
    assert upstream.headers == {
        "authorization": f"Bearer {TOKEN_REF}",
        "anthropic-beta": "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,"
        "context-management-2025-06-27,prompt-caching-scope-2026-01-05",
    }
    assert upstream.state.names.renamed == {}


def test_claude_code_user_agent_without_its_identity_is_rewritten_like_any_client(config) -> None:
    body = {**CLAUDE_CODE_BODY, "system": "be brief"}
    upstream = prepare(config, body, CLAUDE_CODE_HEADERS)
    assert upstream.body["system"][0]["text"] == IDENTITY_CLI
    assert [t["name"] for t in upstream.body["tools"]][3:5] == ["mcp_Agent", "mcp_ToolSearch"]


def test_the_provider_prefix_is_removed_from_the_model(config) -> None:
    request_ = ForwardRequest(
        protocol=Protocol.MESSAGES,
        path="/v1/messages",
        query="",
        headers={},
        body=request(model="claude/claude-opus-5-5"),
        model="claude-opus-5-5",
        account=account(),
        token_ref=TOKEN_REF,
        stream=False,
    )
    assert ClaudeProvider(config).prepare(request_).body["model"] == "claude-opus-5-5"
