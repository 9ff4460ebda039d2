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
def provider(config) -> CodexProvider:
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


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"originator": "codex_exec", "user-agent": "codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm"}, (True, "0.171.0", False)),
        (
            {"originator": "codex_cli_rs", "user-agent": "codex_cli_rs/0.150.0 (Mac OS 26.1; arm64)", "version": "0.150.0"},
            (True, "0.150.0", True),
        ),
        ({"user-agent": "codex-tui/0.160.2 (Linux 6.8; x86_64) iTerm.app/3.6"}, (True, "0.160.2", False)),
        ({"originator": "codex_exec", "user-agent": "OpenAI/Python 2.54.0"}, (False, None, False)),  # an SDK borrowing a name
        ({"originator": "opencode", "user-agent": "opencode/1.18.33"}, (False, None, False)),
        ({"user-agent": "OpenAI/Python 2.54.0", "version": "9.9.9"}, (False, None, False)),
    ],
)
def test_codex_cli_is_recognised_by_its_originator_and_user_agent(headers: dict, expected: tuple) -> None:
    from providers.codex.headers import caller

    found = caller(headers)
    assert (found.codex_cli, found.version, found.sent_version) == expected


def test_other_clients_get_one_version_in_the_header_and_user_agent_and_codex_cli_keeps_its_own(provider: CodexProvider) -> None:
    sdk = provider.prepare(request({"input": "hi"}, {"user-agent": "OpenAI/Python 2.54.0", "version": "1.0.0"}))
    assert sdk.headers["version"] == "9.9.9" and sdk.headers["user-agent"].startswith("codex-tui/9.9.9 (")
    cli_headers = {"originator": "codex_exec", "user-agent": "codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm", "version": "0.171.0"}
    cli = provider.prepare(request({"input": "hi"}, cli_headers))
    assert not {"originator", "user-agent", "version"} & set(cli.headers)  # its own pass (built from the client's headers)
    assert not {"originator", "user-agent", "version"} & set(cli.drop_headers)
    assert isinstance(cli.state, CodexState) and (cli.state.from_codex_cli, cli.state.client_version) == (True, "0.171.0")


def test_a_version_learned_from_codex_cli_is_presented_only_when_newer(provider: CodexProvider) -> None:
    from providers.learned import CODEX_CLI_VERSION

    cli = provider.prepare(request({"input": "hi"}, {"originator": "codex_exec", "user-agent": "codex_exec/9.10.0 (Linux; x86_64)"}))
    assert provider.prepare(request({"input": "hi"})).headers["version"] == "9.9.9"  # not learned before the backend accepts it
    provider.on_success(cli)
    assert provider.learned.get(CODEX_CLI_VERSION) == "9.10.0" and provider.learned.dirty == {CODEX_CLI_VERSION}
    assert provider.prepare(request({"input": "hi"})).headers["version"] == "9.10.0"
    older = provider.prepare(request({"input": "hi"}, {"originator": "codex_exec", "user-agent": "codex_exec/1.0.0 (Linux; x86_64)"}))
    provider.on_success(older)
    assert provider.prepare(request({"input": "hi"})).headers["user-agent"].startswith("codex-tui/9.10.0 (")
