"""A chat-only agent as users run it (Aider's shape: no tools, a trailing system reminder, plain-text edits) through
one Kleis on a Claude, a ChatGPT/Codex and a Copilot plan: the edit lands in the file on each, usage is exact, and
Copilot counts the person's turn as the person's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from addons.services import Parts
from engine.usage_recorder import UsageRecorder
from providers.claude import ClaudeProvider
from providers.codex import CodexProvider
from providers.copilot import CopilotProvider
from providers.copilot import login as copilot_login
from store import keys
from store.models import UsageEvent
from tests.support.chat_agent import ChatAgent, edit_block
from tests.support.plans import claude_and_codex

EDIT = edit_block("hello.py", "print('hello')", "print('hello, world')")


def pieces(text: str, size: int = 7) -> list[str]:
    """The answer in small stream pieces: the edit block crosses chunk boundaries."""
    return [text[i : i + size] for i in range(0, len(text), size)]


@pytest.fixture
def plans(store, copilot_config, github, copilot_api, run_proxy) -> Iterator[tuple[str, str, dict]]:
    with claude_and_codex(store, copilot_config) as (cfg, claude_api, codex):
        copilot_login.import_credentials(store, cfg, github_token=github.seed_github_token())
        for fake in (claude_api, codex, copilot_api):
            fake.text_chunks = pieces(EDIT)
        providers = {"claude": ClaudeProvider(cfg), "codex": CodexProvider(cfg), "copilot": CopilotProvider(cfg)}
        proxy = run_proxy(cfg, providers, Parts(usage=UsageRecorder(interval=0.05)))
        _, key = keys.create_key("aider")
        yield proxy.url, key, {"claude": claude_api, "codex": codex, "copilot": copilot_api}


@pytest.mark.parametrize(
    ("model", "provider", "translation", "usage"),
    [  # usage: the fakes' own figures, as Chat reports them (prompt includes cached)
        ("claude-sonnet-4-5", "claude", "chat→messages", (132, 100, 7)),
        ("gpt-5.4", "codex", "chat→responses", (120, 100, 30)),
        ("copilot/gpt-4.1", "copilot", "", (50, 30, 9)),
    ],
)
def test_a_chat_only_agent_edits_a_file_on_each_plan(plans, tmp_path: Path, model, provider, translation, usage) -> None:
    url, key, fakes = plans
    (tmp_path / "hello.py").write_text("print('hello')\n")
    agent = ChatAgent(openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=20), model, tmp_path)
    text, reported = agent.ask("Make it greet the world.")
    assert text == EDIT and (tmp_path / "hello.py").read_text() == "print('hello, world')\n"
    assert (reported.prompt_tokens, reported.prompt_tokens_details.cached_tokens, reported.completion_tokens) == usage
    agent.ask("Now again.")  # the whole conversation again, the reminder last; the edit is already there
    assert (tmp_path / "hello.py").read_text() == "print('hello, world')\n"
    deadline = time.time() + 10
    while UsageEvent.select().count() < 2:
        assert time.time() < deadline, "usage was not recorded"
        time.sleep(0.05)
    rows = list(UsageEvent.select())
    assert {(r.provider, r.translation, r.status) for r in rows} == {(provider, translation, 200)}
    assert {r.input_tokens + r.cache_read_tokens + r.cache_write_tokens for r in rows} == {usage[0]}
    assert {(r.cache_read_tokens, r.output_tokens) for r in rows} == {usage[1:]}
    if provider == "copilot":  # the person typed both turns: a trailing system reminder does not make them the agent's
        assert [r.headers["x-initiator"] for r in fakes["copilot"].received("/chat/completions")] == ["user", "user"]
