"""The JSON admin API: every route, bad input with the right status, the login round trips, and the proxy following.
Here the parts that need no socket; through listeners: tests/e2e/test_admin_api.py."""

from __future__ import annotations

import time

import pytest

from providers import registry
from store import accounts as account_store
from store import usage as usage_store
from store.keys import hash_key
from store.models import Account, ApiKey
from tests.fakes.admin_providers import TERMS
from tests.support.admin import add_account


def error(response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    assert response.is_json and set(response.json["error"]) == {"type", "message"}
    return response.json["error"]["message"]


# -- accounts -----------------------------------------------------------------------------------------


def test_list_and_show_accounts_with_why_and_no_tokens(api, store) -> None:
    first = add_account(store, "one")
    account_store.set_status(first, "cooling", "rate limited (429)", cooldown_until=time.time() + 60)
    listing = api.get("/admin/api/accounts").json["accounts"]
    assert [a["id"] for a in listing] == [first]
    account = listing[0]
    assert account["state"] == "cooling" and account["why"].startswith("cooling until") and account["usable"] is False
    assert account["is_primary"] and account["expires_in"] > 3500 and account["last_refresh_result"] == "login ok"
    assert account["metadata"] == {"plan": "max"}  # id_token filtered out
    assert "sk-test" not in api.get("/admin/api/accounts").get_data(as_text=True)
    shown = api.get(f"/admin/api/accounts/{first}").json
    assert shown["account"]["id"] == first and shown["events"][0]["reason"] == "rate limited (429)"
    assert "no account with id '999'" in error(api.get("/admin/api/accounts/999"), 404)
    error(api.get("/admin/api/accounts/abc"), 404)
    for odd in ("%C2%B2", "1" * 30, "%EF%BC%91", "-1"):  # "²", a 30-digit id, a full-width "1", a negative id
        error(api.get(f"/admin/api/accounts/{odd}"), 404)
        error(api.post(f"/admin/api/accounts/{odd}/reset"), 404)


def test_providers_listing(api, monkeypatch) -> None:
    providers = {p["name"]: p for p in api.get("/admin/api/providers").json["providers"]}
    assert providers["claude"]["available"] and providers["claude"]["terms_warning"] == TERMS
    monkeypatch.setattr(registry, "PROVIDER_CLASSES", {})
    assert [p["available"] for p in api.get("/admin/api/providers").json["providers"]] == [False, False, False]


def test_account_actions(api, store) -> None:
    first, second = add_account(store, "first"), add_account(store, "second")
    made = api.post(f"/admin/api/accounts/{second}/primary")
    assert made.status_code == 200 and made.json["account"]["is_primary"] and "primary" in made.json["message"]
    assert not account_store.find_account(first).is_primary
    assert api.post(f"/admin/api/accounts/{first}/disable").json["account"]["status"] == "disabled"
    assert api.post(f"/admin/api/accounts/{first}/enable").json["account"]["status"] == "active"
    account_store.set_status(first, "needs_reauth", "refresh refused")
    reset = api.post(f"/admin/api/accounts/{first}/reset").json["account"]
    assert reset["status"] == "active" and reset["status_reason"] == "reset by the operator (admin)"
    error(api.post("/admin/api/accounts/999/reset"), 404)
    assert "unknown account action" in error(api.post(f"/admin/api/accounts/{first}/explode"), 404)
    removed = api.delete(f"/admin/api/accounts/{second}")
    assert removed.json["removed"] == second and Account.get_or_none(Account.id == second) is None
    assert account_store.find_account(first).is_primary  # the successor
    error(api.delete(f"/admin/api/accounts/{second}"), 404)


def test_refresh_of_a_provider_missing_from_the_build(api, store, monkeypatch) -> None:
    account = add_account(store, "orphan")
    monkeypatch.setattr(registry, "PROVIDER_CLASSES", {})
    assert "not available in this build" in error(api.post(f"/admin/api/accounts/{account}/refresh"), 404)


# -- logins --------------------------------------------------------------------------------------------


def test_unknown_missing_and_malformed_provider_requests(api, monkeypatch) -> None:
    assert "unknown provider 'gemini'" in error(api.post("/admin/api/accounts/gemini/oauth/start"), 404)
    assert "unknown provider" in error(api.post("/admin/api/accounts/gemini/oauth/complete", json={"flow_id": "x"}), 404)
    assert "body is not valid JSON" in error(
        api.post("/admin/api/accounts/claude/oauth/start", data="{nope", content_type="application/json"), 400
    )
    assert "must be a JSON object" in error(api.post("/admin/api/accounts/claude/oauth/start", json=[1]), 400)
    assert "device: expected true or false" in error(api.post("/admin/api/accounts/codex/oauth/start", json={"device": "yes"}), 400)
    monkeypatch.setattr(registry, "PROVIDER_CLASSES", {})
    assert "not available in this build" in error(api.post("/admin/api/accounts/claude/oauth/start"), 404)


# -- keys ---------------------------------------------------------------------------------------------------


def test_keys_create_once_list_and_revoke(api) -> None:
    created = api.post("/admin/api/keys", json={"name": "ci", "providers": ["claude"], "models": "claude-*,gpt-5", "expires_days": 7})
    assert created.status_code == 201
    body = created.json
    assert body["key"].startswith("kl_") and ApiKey.get_by_id(body["id"]).key_hash == hash_key(body["key"])
    assert body["providers"] == ["claude"] and body["models"] == ["claude-*", "gpt-5"] and body["expires_at"] > time.time() + 6 * 86400
    listing = api.get("/admin/api/keys")
    assert [k["public_id"] for k in listing.json["keys"]] == [body["public_id"]]
    assert body["key"] not in listing.get_data(as_text=True) and "key_hash" not in listing.get_data(as_text=True)
    revoked = api.post(f"/admin/api/keys/{body['public_id']}/revoke").json["key"]
    assert revoked["revoked_at"] is not None
    assert api.post(f"/admin/api/keys/{body['id']}/revoke").json["key"]["revoked_at"] == revoked["revoked_at"]  # idempotent
    error(api.post("/admin/api/keys/999/revoke"), 404)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "missing field: name"),
        ({"name": 5}, "missing field: name"),
        ({"name": "x" * 201}, "at most 200"),
        ({"name": "x", "providers": "gemini"}, "unknown provider: gemini"),
        ({"name": "x", "providers": 5}, "providers: expected a list"),
        ({"name": "x", "models": [1]}, "models: expected a list"),
        ({"name": "x", "expires_days": "soon"}, "expected a number of days"),
        ({"name": "x", "expires_days": True}, "expected a number of days"),
        ({"name": "x", "expires_days": 0.0}, "between 0 and 36500"),
        ({"name": "x", "rate_limit": -5}, "rate_limit: must be 0 (no limit) or more"),
        ({"name": "x", "concurrency_limit": "many"}, "concurrency_limit: expected a whole number"),
        ({"name": "x", "concurrency_limit": 2.5}, "concurrency_limit: expected a whole number"),
    ],
)
def test_bad_key_requests(api, payload: dict, message: str) -> None:
    assert message in error(api.post("/admin/api/keys", json=payload), 400)
    assert ApiKey.select().count() == 0


def test_key_limits_are_set_at_creation_and_changed_field_by_field(api) -> None:
    created = api.post("/admin/api/keys", json={"name": "ci", "rate_limit": 30, "concurrency_limit": "2"}).json
    assert (created["rate_limit"], created["concurrency_limit"]) == (30, 2)
    changed = api.post(f"/admin/api/keys/{created['id']}/limits", json={"concurrency_limit": 5}).json["key"]
    assert (changed["rate_limit"], changed["concurrency_limit"]) == (30, 5)  # the field left out stays
    cleared = api.post(f"/admin/api/keys/{created['public_id']}/limits", json={"rate_limit": None, "concurrency_limit": 0}).json["key"]
    assert (cleared["rate_limit"], cleared["concurrency_limit"]) == (None, None)
    assert "give rate_limit" in error(api.post(f"/admin/api/keys/{created['id']}/limits", json={}), 400)
    assert "expected a whole number" in error(api.post(f"/admin/api/keys/{created['id']}/limits", json={"rate_limit": "x"}), 400)
    error(api.post("/admin/api/keys/999/limits", json={"rate_limit": 1}), 404)
    row = ApiKey.get_by_id(created["id"])
    assert (row.rate_limit, row.concurrency_limit) == (None, None)


# -- usage and the rest ------------------------------------------------------------------------------------


def test_usage_windows_custom_periods_and_bad_parameters(api, store) -> None:
    key = api.post("/admin/api/keys", json={"name": "agent"}).json
    account = add_account(store, "worker")
    now = time.time()
    usage_store.insert_events(
        [
            {
                "request_id": "a",
                "created_at": now - 30,
                "key_id": key["id"],
                "account_id": account,
                "provider": "claude",
                "model": "claude-x",
                "status": 200,
                "input_tokens": 10,
                "output_tokens": 3,
            },
            {
                "request_id": "b",
                "created_at": now - 10 * 86400,
                "key_id": key["id"],
                "account_id": account,
                "provider": "claude",
                "model": "claude-y",
                "status": 200,
                "output_tokens": 1,
            },
        ]
    )
    body = api.get("/admin/api/usage").json
    assert set(body["windows"]) == {"today", "7d", "30d"}
    assert body["windows"]["today"]["total"]["requests"] == 1 and body["windows"]["30d"]["total"]["requests"] == 2
    assert {r["group"] for r in body["windows"]["30d"]["by_model"]} == {"claude-x", "claude-y"}
    assert [r["group"] for r in body["windows"]["7d"]["by_model"]] == ["claude-x"]
    assert (
        body["windows"]["7d"]["by_key"][0]["label"].startswith("agent (")
        and body["windows"]["7d"]["by_account"][0]["label"] == "claude: worker@example.test"
    )
    assert [e["request_id"] for e in body["recent"]] == ["a", "b"] and body["recent"][0]["key_label"].startswith("agent")
    assert list(api.get("/admin/api/usage?window=7d&recent=1").json["windows"]) == ["7d"]
    custom = api.get("/admin/api/usage?since=24h&by=model&recent=0").json
    assert custom["by"] == "model" and custom["totals"][0]["group"] == "claude-x" and custom["recent"] == []
    assert "unknown window" in error(api.get("/admin/api/usage?window=year"), 400)
    assert "expected a duration" in error(api.get("/admin/api/usage?since=yesterday"), 400)
    assert "unknown grouping" in error(api.get("/admin/api/usage?since=1d&by=colour"), 400)
    assert "expected a number" in error(api.get("/admin/api/usage?recent=many"), 400)
    other = add_account(store, "other-worker", provider="codex")
    usage_store.insert_events(
        [
            {
                "request_id": "c",
                "created_at": now - 20,
                "key_id": None,
                "account_id": other,
                "provider": "codex",
                "model": "gpt-5.4",
                "status": 429,
            }
        ]
    )
    narrowed = api.get(f"/admin/api/usage?window=30d&account_id={account}").json
    assert narrowed["filters"] == {"account_id": account} and narrowed["windows"]["30d"]["total"]["requests"] == 2
    assert [e["request_id"] for e in narrowed["recent"]] == ["a", "b"]
    by_provider = api.get("/admin/api/usage?since=1d&provider=codex").json
    assert (
        by_provider["totals"][0]["requests"] == 1
        and by_provider["totals"][0]["errors"] == 1
        and [e["request_id"] for e in by_provider["recent"]] == ["c"]
    )
    assert api.get("/admin/api/usage?window=today&model=claude-x").json["windows"]["today"]["total"]["input_tokens"] == 10
    assert "key_id: expected a number" in error(api.get("/admin/api/usage?key_id=abc"), 400)


def test_unknown_routes_and_methods_answer_json(api) -> None:
    error(api.get("/admin/api/nothing"), 404)
    error(api.delete("/admin/api/keys"), 405)
    error(api.get("/admin/api/accounts/1/primary"), 405)


def test_unexpected_errors_answer_json_500(api, monkeypatch) -> None:
    from admin import operations

    monkeypatch.setattr(operations, "list_accounts", lambda: 1 / 0)
    assert "ZeroDivisionError" in error(api.get("/admin/api/accounts"), 500)


# -- the proxy follows within a second -------------------------------------------------------------------------
