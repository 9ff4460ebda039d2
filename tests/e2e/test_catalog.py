"""The model registry: models.dev fetch/TTL/fallbacks, the kleis entry, /models/api.json, /v1/models, resolution.
Here the parts that need a listener; the rest: tests/unit/test_catalog.py."""

from __future__ import annotations

import asyncio
import json
import time

import anthropic
import httpx
import openai
import pytest

from addons.services import Parts
from core.protocol import Protocol
from providers.catalog import Catalog
from providers.catalog_builtin import BUILTIN_REGISTRY, model, provider
from providers.models_dev import ModelsDev
from store import keys
from store.accounts import TokenSet, upsert_account
from tests.fakes.base import FakeServer, Reply
from tests.fakes.loopback_provider import LoopbackProvider
from tests.support.models_dev_schema import provider_errors

REGISTRY = {
    "anthropic": provider(
        "anthropic",
        "Anthropic",
        "@ai-sdk/anthropic",
        ["ANTHROPIC_API_KEY"],
        "https://docs.anthropic.com",
        [
            model("claude-sonnet-4-5", "Claude Sonnet 4.5", context=200000, output=64000, cost=(3, 15, 0.3, 3.75)),
            model("claude-haiku-4-5", "Claude Haiku 4.5", context=200000, output=64000),
            {**model("claude-3-opus", "Claude Opus 3", context=200000, output=4096), "status": "deprecated"},
        ],
    ),
    "openai": provider(
        "openai",
        "OpenAI",
        "@ai-sdk/openai",
        ["OPENAI_API_KEY"],
        "https://platform.openai.com/docs/models",
        [
            model("gpt-5.4", "GPT-5.4", context=400000, input_limit=272000, output=128000),
            model("gpt-4o", "GPT-4o", context=128000, output=16384, reasoning=False),
        ],
    ),
    "github-copilot": provider(
        "github-copilot",
        "GitHub Copilot",
        "@ai-sdk/openai-compatible",
        ["GITHUB_TOKEN"],
        "https://docs.github.com/copilot",
        [
            model("gpt-4.1", "GPT-4.1", context=128000, output=16384, reasoning=False),
            model("claude-sonnet-4.5", "Claude Sonnet 4.5", context=144000, output=16000),
        ],
        api="https://copilot.example.test",
    ),
    "mistral": provider(
        "mistral",
        "Mistral",
        "@ai-sdk/mistral",
        ["MISTRAL_API_KEY"],
        "https://docs.mistral.ai",
        [model("mistral-large", "Mistral Large", context=128000, output=8000)],
    ),
}
COPILOT_ITEMS = [
    {
        "id": "gpt-4.1",
        "name": "GPT-4.1",
        "supported_endpoints": ["/chat/completions"],
        "capabilities": {"limits": {"max_prompt_tokens": 128000, "max_output_tokens": 16384}, "supports": {"tool_calls": True}},
    },
    {
        "id": "claude-sonnet-4.5",
        "name": "Claude Sonnet 4.5",
        "supported_endpoints": ["/chat/completions", "/v1/messages"],
        "capabilities": {
            "limits": {"max_prompt_tokens": 128000, "max_output_tokens": 16000},
            "supports": {"tool_calls": True, "vision": True},
        },
    },
    {
        "id": "oswe-vscode",
        "name": "Raptor",
        "supported_endpoints": ["/responses"],
        "capabilities": {
            "limits": {"max_context_window_tokens": 264000, "max_prompt_tokens": 200000, "max_output_tokens": 64000},
            "supports": {"tool_calls": True, "reasoning_effort": ["low", "high"]},
        },
    },
]


def named(name: str, protocols: frozenset, models: tuple[str, ...], items: list | None = None):
    cls = type(
        f"Test{name.title()}",
        (LoopbackProvider,),
        {"name": name, "display_name": name.title(), "protocols": protocols, "default_models": models},
    )

    async def list_models(self, account, http):
        return items

    cls.list_models = list_models
    return cls


class FakeModelsDev(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.body = REGISTRY
        self.route("GET", "/api.json", lambda request: Reply(200, self.body))


@pytest.fixture
def models_dev():
    fake = FakeModelsDev().start()
    yield fake
    fake.stop()


def test_fetch_ttl_persist_and_fallbacks(tmp_path, models_dev) -> None:
    cache = ModelsDev(f"{models_dev.url}/api.json", ttl=0.3, data_dir=tmp_path)
    cache.load_offline()
    assert cache.source == "builtin" and cache.data is BUILTIN_REGISTRY  # nothing persisted, offline
    assert cache.refresh_blocking() and cache.source == "fetched" and set(cache.data) == set(REGISTRY)
    assert not cache.stale()
    time.sleep(0.35)
    assert cache.stale()
    models_dev.body = {"broken": True}
    assert not cache.refresh_blocking() and "did not answer a models.dev registry" in cache.last_error
    assert set(cache.data) == set(REGISTRY)  # kept the good copy
    models_dev.stop()
    assert not cache.refresh_blocking(timeout=2)
    status = cache.read_status()
    assert status["error"] and status["fetched_at"]
    restarted = ModelsDev(f"{models_dev.url}/api.json", ttl=3600, data_dir=tmp_path)
    restarted.load_offline()
    assert restarted.source == "persisted" and set(restarted.data) == set(REGISTRY)


def make_catalog(config, tmp_path, models_dev, **providers):
    cache = ModelsDev(f"{models_dev.url}/api.json", 3600, tmp_path)
    cache.load_offline()
    assert cache.refresh_blocking()
    return Catalog(config, providers, cache)


class Accounts:
    def __init__(self, *names: str, status: str = "active") -> None:
        from store.accounts import AccountView

        self.accounts = [
            AccountView(i, n, "", f"i{i}", None, status, "", None, True, "a", "r", None, 1, {}, 0.0, None, "") for i, n in enumerate(names)
        ]


def test_kleis_entry_is_models_dev_valid_and_names_the_sdk_per_protocol(config, tmp_path, models_dev) -> None:
    catalog = make_catalog(
        config,
        tmp_path,
        models_dev,
        claude=named("claude", frozenset({Protocol.MESSAGES}), ("claude-sonnet-4-5", "claude-next-1"))(config, {}, ""),
        codex=named("codex", frozenset({Protocol.RESPONSES}), ("gpt-5.4", "gpt-5.9"))(config, {}, ""),
        copilot=named("copilot", frozenset(Protocol), ("gpt-4.1",))(config, {}, ""),
    )
    catalog.follower = Accounts("claude", "codex")
    merged = catalog.api_json("http://127.0.0.1:8080")
    assert {k: v for k, v in merged.items() if k != "kleis"} == REGISTRY  # upstream providers untouched
    kleis = merged["kleis"]
    assert provider_errors(kleis) == []
    assert kleis["env"] == ["KLEIS_API_KEY"] and kleis["api"] == "http://127.0.0.1:8080/v1"
    ids = set(kleis["models"])
    assert ids == {"claude/claude-sonnet-4-5", "claude/claude-haiku-4-5", "claude/claude-next-1", "codex/gpt-5.4", "codex/gpt-5.9"}
    sonnet = kleis["models"]["claude/claude-sonnet-4-5"]
    assert sonnet["provider"] == {"npm": "@ai-sdk/anthropic", "api": "http://127.0.0.1:8080/v1"}
    assert sonnet["limit"] == {"context": 200000, "output": 64000} and sonnet["cost"]["input"] == 3  # copied from models.dev
    assert kleis["models"]["codex/gpt-5.4"]["provider"] == {
        "npm": "@ai-sdk/openai",
        "api": "http://127.0.0.1:8080/v1",
        "shape": "responses",
    }
    assert kleis["models"]["codex/gpt-5.4"]["limit"]["input"] == 272000
    catalog.follower = Accounts("claude", "codex", "copilot")
    catalog.invalidate()
    copilot = catalog.kleis_entry("http://k")["models"]
    assert copilot["copilot/gpt-4.1"]["provider"]["npm"] == "@ai-sdk/openai-compatible"
    assert provider_errors(catalog.kleis_entry("http://k")) == []


def test_copilot_models_come_from_its_own_list_when_fetched(config, tmp_path, models_dev) -> None:
    copilot = named("copilot", frozenset(Protocol), ("gpt-4.1",), COPILOT_ITEMS)(config, {}, "")
    catalog = make_catalog(config, tmp_path, models_dev, copilot=copilot)
    catalog.follower = Accounts("copilot")
    catalog.provider_lists["copilot"] = asyncio.run(copilot.list_models(None, None))
    catalog.invalidate()
    entry = catalog.kleis_entry("http://k")
    assert provider_errors(entry) == []
    assert entry["models"]["copilot/claude-sonnet-4.5"]["provider"]["npm"] == "@ai-sdk/anthropic"
    assert entry["models"]["copilot/oswe-vscode"]["provider"]["npm"] == "@ai-sdk/openai"
    assert entry["models"]["copilot/oswe-vscode"]["limit"] == {"context": 264000, "input": 200000, "output": 64000}
    assert entry["models"]["copilot/oswe-vscode"]["reasoning"] is True
    assert catalog.lookup("claude-sonnet-4.5", Protocol.MESSAGES) == "copilot"
    assert catalog.lookup("gpt-4.1", Protocol.MESSAGES) is None  # Copilot serves it on chat, not messages


@pytest.mark.parametrize(
    ("model_id", "protocol", "provider_name"),
    [
        ("claude-sonnet-4-5", Protocol.MESSAGES, "claude"),
        ("claude-haiku-4-5", Protocol.MESSAGES, "claude"),
        ("gpt-5.4", Protocol.RESPONSES, "codex"),  # codex before copilot
        ("gpt-5.4", Protocol.CHAT, None),  # codex serves Responses only; copilot does not list it here
        ("gpt-4.1", Protocol.CHAT, "copilot"),
        ("claude-sonnet-4.5", Protocol.CHAT, "copilot"),
        ("mistral-large", Protocol.CHAT, None),
        ("claude-3-opus", Protocol.MESSAGES, None),  # deprecated in models.dev (family rules may still route it)
    ],
)
def test_resolution_table(config, tmp_path, models_dev, model_id: str, protocol: Protocol, provider_name: str | None) -> None:
    catalog = make_catalog(
        config,
        tmp_path,
        models_dev,
        claude=named("claude", frozenset({Protocol.MESSAGES}), ())(config, {}, ""),
        codex=named("codex", frozenset({Protocol.RESPONSES}), ("gpt-5.4",))(config, {}, ""),
        copilot=named("copilot", frozenset(Protocol), ())(config, {}, ""),
    )
    assert catalog.lookup(model_id, protocol) == provider_name


def test_through_the_proxy(store, config, tmp_path, models_dev, run_proxy, fake_oauth) -> None:
    custom = tmp_path / "custom.json"
    custom.write_text(json.dumps({"models": {"claude/claude-private-1": {"name": "Private"}}}))
    cfg = config.replace(models_dev_url=f"{models_dev.url}/api.json", custom_models=str(custom))
    providers = {
        "claude": named("claude", frozenset({Protocol.MESSAGES}), ("claude-sonnet-4-5",))(cfg, {}, ""),
        "codex": named("codex", frozenset({Protocol.RESPONSES}), ("gpt-5.4",))(cfg, {}, ""),
        "copilot": named("copilot", frozenset(Protocol), ())(cfg, {}, ""),
    }
    proxy = run_proxy(cfg, providers, parts=Parts(catalog=Catalog(cfg, providers)))
    for name in ("claude", "codex"):
        upsert_account(name, f"{name}-1", TokenSet("a", "r", time.time() + 3600), store.cipher)
    _, key = keys.create_key("all")
    _, narrow = keys.create_key("claude only", providers="claude", models="claude-sonnet*")
    time.sleep(0.6)
    deadline = time.time() + 5
    while time.time() < deadline:  # the catalog fetches models.dev in the background
        api = httpx.get(f"{proxy.url}/models/api.json").json()
        if "mistral" in api:
            break
        time.sleep(0.05)
    assert "mistral" in api and provider_errors(api["kleis"]) == []
    assert api["kleis"]["api"] == f"{proxy.url}/v1"
    assert "claude/claude-private-1" in api["kleis"]["models"] and "codex/gpt-5.4" in api["kleis"]["models"]
    assert not any(m.startswith("copilot/") for m in api["kleis"]["models"])  # no Copilot account
    all_ids = [m.id for m in openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key).models.list()]
    assert {"claude/claude-sonnet-4-5", "claude-sonnet-4-5", "codex/gpt-5.4", "gpt-5.4", "claude/claude-private-1"} <= set(all_ids)
    narrow_ids = [m.id for m in anthropic.Anthropic(base_url=proxy.url, auth_token=narrow, api_key=None).models.list()]
    assert narrow_ids == ["claude/claude-sonnet-4-5", "claude-sonnet-4-5"]
    one = httpx.get(f"{proxy.url}/v1/models/codex/gpt-5.4", headers={"x-api-key": key})
    assert one.status_code == 200 and one.json()["owned_by"] == "codex"
    retrieved = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key).models.retrieve("codex/gpt-5.4")  # sent as codex%2Fgpt-5.4
    assert retrieved.id == "codex/gpt-5.4" and retrieved.owned_by == "codex"
    assert (
        anthropic.Anthropic(base_url=proxy.url, auth_token=narrow, api_key=None).models.retrieve("claude/claude-sonnet-4-5").id
        == "claude/claude-sonnet-4-5"
    )
    unknown = httpx.post(f"{proxy.url}/v1/messages", json={"model": "mistral-large", "messages": []}, headers={"x-api-key": key})
    assert unknown.status_code == 404 and "/v1/models" in unknown.json()["error"]["message"]
    copilot_only = httpx.post(f"{proxy.url}/v1/chat/completions", json={"model": "gpt-4.1", "messages": []}, headers={"x-api-key": key})
    assert copilot_only.status_code == 503 and "Copilot" in copilot_only.json()["error"]["message"]
    public = run_proxy(cfg.replace(public_url="https://kleis.example.net"), providers, parts=Parts(catalog=Catalog(cfg, providers)))
    assert httpx.get(f"{public.url}/models/api.json").json()["kleis"]["api"] == "https://kleis.example.net/v1"  # behind TLS


def test_api_json_is_the_registry_plus_the_kleis_entry_for_any_base(config, tmp_path, models_dev) -> None:
    catalog = make_catalog(
        config, tmp_path, models_dev, claude=named("claude", frozenset({Protocol.MESSAGES}), ("claude-sonnet-4-5",))(config, {}, "")
    )
    catalog.follower = Accounts("claude")
    for base in ("http://127.0.0.1:8080", "http://kleis.internal:9000"):
        served = json.loads(catalog.api_json_bytes(base))
        assert served == catalog.api_json(base) and served["kleis"]["api"] == f"{base}/v1"
    first = catalog.registry_bytes()
    catalog.api_json_bytes("http://another-host")
    assert catalog.registry_bytes() is first  # the megabytes are serialised once, whatever Host clients send
    answer = catalog.api_json_bytes("http://127.0.0.1:8080")
    assert catalog.api_json_bytes("http://127.0.0.1:8080") is answer  # the whole answer is kept per base
    for i in range(20):  # a client inventing Host headers cannot grow the cache
        catalog.api_json_bytes(f"http://host-{i}")
    assert len(catalog._answers) == Catalog.ANSWERS_KEPT
    catalog.follower = Accounts()  # the accounts changed: the kleis entry is rebuilt
    catalog.invalidate()
    rebuilt = catalog.api_json_bytes("http://127.0.0.1:8080")
    assert rebuilt is not answer and "claude/claude-sonnet-4-5" not in json.loads(rebuilt)["kleis"]["models"]


def test_a_provider_list_is_fetched_as_soon_as_its_first_account_appears(config, tmp_path, models_dev) -> None:
    from types import SimpleNamespace

    copilot = named("copilot", frozenset(Protocol), ("gpt-4.1",), COPILOT_ITEMS)(config, {}, "")
    catalog = make_catalog(config.replace(models_ttl=3600), tmp_path, models_dev, copilot=copilot)
    accounts = Accounts()

    async def fresh(account):
        return account

    catalog.follower = accounts
    tokens = SimpleNamespace(fresh=fresh)
    asyncio.run(catalog.refresh_once(None, tokens))
    assert "copilot" not in catalog.provider_lists  # no account yet: nothing to list, and no hour-long wait stamped
    accounts.accounts = Accounts("copilot").accounts  # an account logged in after start
    asyncio.run(catalog.refresh_once(None, tokens))
    assert [item["id"] for item in catalog.provider_lists["copilot"]] == [item["id"] for item in COPILOT_ITEMS]
    fetched = catalog.lists_fetched["copilot"]
    asyncio.run(catalog.refresh_once(None, tokens))
    assert catalog.lists_fetched["copilot"] == fetched  # then once per TTL
