"""Request normalisation for the Codex backend: each rule on its own, then a whole OpenAI-SDK-shaped body."""

from __future__ import annotations

import pytest

from providers.codex.body import REMOVED_PARAMETERS, BodyRules, normalise_body


def normalised(**body: object) -> dict:
    return normalise_body(body, "gpt-5.4")


def test_model_is_the_upstream_name_and_store_stream_are_forced() -> None:
    result = normalised(model="codex/gpt-5.4", input=[], store=True, stream=False)
    assert (result["model"], result["store"], result["stream"]) == ("gpt-5.4", False, True)
    assert normalised(input=[])["store"] is False and normalised(input=[])["stream"] is True


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, ""),
        ({"instructions": None}, ""),
        ({"instructions": "be brief"}, "be brief"),
        ({"instructions": ""}, ""),
        ({"instructions": ["one", {"type": "input_text", "text": "two"}]}, "one\n\ntwo"),
        ({"instructions": 42}, ""),
    ],
)
def test_instructions_are_always_a_string(given: dict, expected: str) -> None:
    assert normalised(input=[], **given)["instructions"] == expected


def test_a_string_input_becomes_one_user_input_text_message() -> None:
    assert normalised(input="hello")["input"] == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]}]


def test_other_inputs_become_lists() -> None:
    item = {"role": "user", "content": "hi"}
    assert normalised(input=item)["input"] == [item]
    assert normalised(input=None)["input"] == []
    assert normalised()["input"] == []
    assert normalised(input=[item])["input"] == [item]


def test_system_role_items_become_developer_and_nothing_else_changes() -> None:
    items = [
        {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "rules"}]},
        {"role": "system", "content": "short form"},
        {"role": "user", "content": "hi"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
    ]
    result = normalised(input=items)["input"]
    assert [item.get("role") for item in result] == ["developer", "developer", "user", None]
    assert result[0]["content"] == items[0]["content"] and result[3] == items[3]
    assert items[0]["role"] == "system"  # the caller's items are not mutated


def test_include_gains_encrypted_reasoning_once_and_keeps_the_rest() -> None:
    assert normalised(input=[])["include"] == ["reasoning.encrypted_content"]
    assert normalised(input=[], include=["message.output_text.logprobs"])["include"] == [
        "message.output_text.logprobs",
        "reasoning.encrypted_content",
    ]
    assert normalised(input=[], include=["reasoning.encrypted_content"])["include"] == ["reasoning.encrypted_content"]
    assert normalised(input=[], include="bogus")["include"] == ["reasoning.encrypted_content"]


@pytest.mark.parametrize("name", REMOVED_PARAMETERS)
def test_each_refused_parameter_is_removed(name: str) -> None:
    result = normalised(input=[], **{name: 1})
    assert name not in result


def test_the_issue_list_is_covered() -> None:
    issue = {
        "max_output_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "truncation",
        "user",
        "previous_response_id",
        "stream_options",
        "prompt_cache_options",  # issue 18
        "context_management",
    }
    assert issue <= set(REMOVED_PARAMETERS)


def test_a_content_parts_prompt_cache_breakpoint_is_removed_and_the_rest_kept() -> None:
    marked = {"type": "input_text", "text": "a", "prompt_cache_breakpoint": {"ttl": "1h"}}
    plain = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "b"}]}
    items = normalised(input=[{"type": "message", "role": "user", "content": [marked, "odd"]}, plain, {"type": "reasoning"}])["input"]
    assert items == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"}, "odd"]},
        plain,
        {"type": "reasoning"},
    ]
    assert items[1] is plain  # items without the field are passed as they are


@pytest.mark.parametrize(("tier", "kept"), [("priority", True), ("auto", False), ("flex", False), ("default", False)])
def test_service_tier_only_priority_survives(tier: str, kept: bool) -> None:
    assert ("service_tier" in normalised(input=[], service_tier=tier)) is kept


def test_parallel_tool_calls_only_with_tools() -> None:
    tool = {"type": "function", "name": "read", "parameters": {"type": "object"}}
    assert "parallel_tool_calls" not in normalised(input=[], parallel_tool_calls=True)
    assert "parallel_tool_calls" not in normalised(input=[], parallel_tool_calls=True, tools=[])
    assert normalised(input=[], parallel_tool_calls=False, tools=[tool])["parallel_tool_calls"] is False


def test_input_item_ids_over_64_characters_are_dropped() -> None:
    short, long = {"type": "reasoning", "id": "rs_" + "a" * 61, "summary": []}, {"type": "reasoning", "id": "rs_" + "a" * 62, "summary": []}
    result = normalised(input=[short, long])["input"]
    assert result[0]["id"] == short["id"] and "id" not in result[1] and result[1]["summary"] == []


def test_fields_the_backend_takes_pass_unchanged() -> None:
    body = {
        "input": [],
        "tools": [{"type": "function", "name": "f"}],
        "tool_choice": "auto",
        "reasoning": {"effort": "high", "summary": "auto"},
        "text": {"verbosity": "low"},
        "prompt_cache_key": "session-1",
        "metadata": {"k": "v"},
    }
    result = normalise_body(body, "gpt-5.4")
    for field in ("tools", "tool_choice", "reasoning", "text", "prompt_cache_key", "metadata"):
        assert result[field] == body[field]


def test_the_rules_are_configurable_in_one_place() -> None:
    rules = BodyRules(removed=frozenset({"metadata"}), kept_service_tiers=frozenset({"priority", "flex"}), required_include=())
    result = normalise_body({"input": [], "metadata": {}, "temperature": 0.2, "service_tier": "flex"}, "gpt-5.4", rules)
    assert "metadata" not in result and result["temperature"] == 0.2 and result["service_tier"] == "flex" and result["include"] == []


def test_an_openai_sdk_body_comes_out_as_codex_takes_it() -> None:
    body = {
        "model": "codex/gpt-5.4",
        "input": "hi",
        "instructions": None,
        "max_output_tokens": 200,
        "temperature": 0.3,
        "top_p": 1,
        "stream": False,
        "store": True,
        "user": "u1",
        "truncation": "auto",
        "previous_response_id": "resp_1",
        "parallel_tool_calls": True,
    }
    assert normalise_body(body, "gpt-5.4") == {
        "model": "gpt-5.4",
        "store": False,
        "stream": True,
        "instructions": "",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "include": ["reasoning.encrypted_content"],
    }
