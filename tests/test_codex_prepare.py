"""CodexProvider.prepare: URL, headers (token reference, account id, originator/UA, session id), dropped headers."""

from __future__ import annotations

import time
import uuid

import pytest

from core.protocol import Protocol
from providers.base import ForwardRequest
from providers.codex import CodexProvider
from providers.codex.stream import CodexState
from store.accounts import AccountView
from tests.fakes.codex_auth import ChatGPTAccount


def account(metadata: dict | None = None, access: str | None = None) -> AccountView:
    now = time.time()
    return AccountView(
        7,
        "codex",
        "",
        "acc:user",
        "a@example.test",
        "active",
        "",
        None,
        True,
        access or ChatGPTAccount().access_token("j", 600),
        "rt",
        now + 600,
        1,
        {"account_id": "acc-1111-aaaa"} if metadata is None else metadata,
        now,
        None,
        "",
    )


def request(body: dict, headers: dict | None = None, stream: bool = False, view: AccountView | None = None) -> ForwardRequest:
    return ForwardRequest(
        Protocol.RESPONSES, "/v1/responses", "", headers or {}, body, "gpt-5.4", view or account(), "kleis-secret-ref-" + "0" * 32, stream
    )


@pytest.fixture
def provider(config) -> CodexProvider:  # type: ignore[no-untyped-def]
    return CodexProvider(
        config.replace(
            codex_api_base="https://codex.example.test/backend-api/codex", codex_originator="codex-tui", codex_client_version="9.9.9"
        )
    )


def test_url_headers_and_aggregation(provider: CodexProvider) -> None:
    upstream = provider.prepare(request({"model": "codex/gpt-5.4", "input": "hi"}))
    assert upstream.url == "https://codex.example.test/backend-api/codex/responses"
    headers = upstream.headers
    assert headers["authorization"] == "Bearer kleis-secret-ref-" + "0" * 32  # a reference; the token is swapped in on the wire
    assert headers["chatgpt-account-id"] == "acc-1111-aaaa" and headers["originator"] == "codex-tui"
    assert headers["user-agent"].startswith("codex-tui/9.9.9 (") and headers["accept"] == "text/event-stream"
    assert uuid.UUID(headers["session-id"]) and "prompt_cache_key" not in upstream.body  # a fresh id caches nothing
    assert upstream.aggregate is True and upstream.body["stream"] is True
    assert isinstance(upstream.state, CodexState) and upstream.state.session_id == headers["session-id"]
    assert provider.prepare(request({"input": "hi", "stream": True}, stream=True)).aggregate is False


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"Session-Id": "s-header"}, {}, "s-header"),
        ({"session_id": "s-codex-cli", "conversation_id": "other"}, {}, "s-codex-cli"),
        ({}, {"prompt_cache_key": "s-body"}, "s-body"),
        ({"x-session-id": "s-x"}, {"prompt_cache_key": "s-body"}, "s-x"),
    ],
)
def test_the_clients_session_is_kept(provider: CodexProvider, headers: dict, body: dict, expected: str) -> None:
    upstream = provider.prepare(request({"input": [], **body}, headers))
    assert upstream.headers["session-id"] == expected
    assert upstream.body["prompt_cache_key"] == body.get("prompt_cache_key", expected)


def test_client_headers_that_must_not_travel_are_dropped(provider: CodexProvider) -> None:
    headers = {
        "X-Stainless-Lang": "python",
        "x-stainless-os": "Linux",
        "session_id": "s",
        "ChatGPT-Account-Id": "spoofed",
        "OpenAI-Organization": "org",
    }
    upstream = provider.prepare(request({"input": []}, headers))
    assert {
        "x-stainless-lang",
        "x-stainless-os",
        "session_id",
        "chatgpt-account-id",
        "openai-organization",
        "authorization",
        "x-api-key",
    } <= set(upstream.drop_headers)
    assert all(name == name.lower() for name in upstream.drop_headers)
    assert upstream.headers["chatgpt-account-id"] == "acc-1111-aaaa"


def test_account_id_from_the_access_token_when_metadata_lacks_it_and_residency(provider: CodexProvider) -> None:
    upstream = provider.prepare(request({"input": []}, view=account(metadata={"residency": "eu"})))
    assert upstream.headers["chatgpt-account-id"] == "acc-1111-aaaa" and upstream.headers["x-openai-internal-codex-residency"] == "eu"
    unconstrained = provider.prepare(request({"input": []}, view=account(metadata={"account_id": "a", "residency": "no_constraint"})))
    assert "x-openai-internal-codex-residency" not in unconstrained.headers


def test_the_provider_declares_itself(provider: CodexProvider) -> None:
    assert (provider.name, provider.display_name, provider.protocols) == ("codex", "Codex (ChatGPT)", frozenset({Protocol.RESPONSES}))
    assert "gpt-5.4" in provider.default_models and provider.terms_warning
    assert callable(provider.login.start_login) and callable(provider.login.complete_login) and callable(provider.login.import_credentials)
    from cli.logins import LOGIN_COMMANDS

    assert callable(LOGIN_COMMANDS["codex"].register_login) and callable(LOGIN_COMMANDS["codex"].register_import)
