"""The JSON admin API: every route, bad input with the right status, the login round trips, and the proxy following.
Here the parts that need a listener; the rest: tests/unit/test_admin_api.py."""

from __future__ import annotations

import itertools
import time

import httpx
import pytest

from admin import create_app
from store import accounts as account_store
from store.models import OAuthState
from tests.fakes.admin_providers import TERMS, consent
from tests.support.admin import Api, add_account
from tests.unit.test_admin_api import error

# -- accounts -----------------------------------------------------------------------------------------


def test_refresh_now_and_its_failure(api, store, authority) -> None:
    access, refresh = authority.seed()
    row, _ = account_store.upsert_account("claude", "fresh", account_store.TokenSet(access, refresh, time.time() + 30), store.cipher)
    done = api.post(f"/admin/api/accounts/{row.id}/refresh")
    assert (
        done.status_code == 200
        and done.json["account"]["expires_in"] > 3500
        and done.json["account"]["last_refresh_result"] == "refresh ok"
    )
    stale = add_account(store, "stale")
    assert "needs a new login" in error(api.post(f"/admin/api/accounts/{stale}/refresh"), 502)
    assert api.get(f"/admin/api/accounts/{stale}").json["account"]["status"] == "needs_reauth"


# -- logins --------------------------------------------------------------------------------------------


def test_paste_login_round_trip_with_the_state_in_the_code(api, authority) -> None:
    started = api.post("/admin/api/accounts/claude/oauth/start")
    assert started.status_code == 200
    flow = started.json
    assert flow["kind"] == "paste" and flow["warning"] == TERMS and flow["flow_id"] and "code_challenge=" in flow["authorize_url"]
    assert "verifier" not in started.get_data(as_text=True)
    code, state = consent(flow["authorize_url"])
    assert state == flow["flow_id"]
    done = api.post("/admin/api/accounts/claude/oauth/complete", json={"code": f"{code}#{state}"})
    assert done.status_code == 200 and done.json["status"] == "done" and done.json["created"] is True
    assert done.json["account"]["provider"] == "claude" and done.json["account"]["email"] == "ada@example.test"
    assert OAuthState.select().count() == 0
    # logging in again with the same identity updates the account
    again = api.post("/admin/api/accounts/claude/oauth/start").json
    code, state = consent(again["authorize_url"])
    second = api.post("/admin/api/accounts/claude/oauth/complete", json={"flow_id": state, "code": f"{code}#{state}"}).json
    assert second["created"] is False and second["account_id"] == done.json["account_id"]


def test_wrong_or_expired_login_state_and_missing_fields(api, authority) -> None:
    flow = api.post("/admin/api/accounts/claude/oauth/start").json
    code, state = consent(flow["authorize_url"])
    assert "unknown" in error(api.post("/admin/api/accounts/claude/oauth/complete", json={"code": f"{code}#forged"}), 400)
    assert "does not match" in error(
        api.post("/admin/api/accounts/claude/oauth/complete", json={"flow_id": state, "code": f"{code}#other"}), 400
    )
    assert "missing field: flow_id" in error(api.post("/admin/api/accounts/claude/oauth/complete", json={}), 400)
    assert "missing field: flow_id" in error(api.post("/admin/api/accounts/claude/oauth/complete", json={"code": code}), 400)
    assert "missing field: code" in error(api.post("/admin/api/accounts/claude/oauth/complete", json={"flow_id": state}), 400)
    assert "flow_id: expected a string" in error(api.post("/admin/api/accounts/claude/oauth/complete", json={"flow_id": 5}), 400)
    assert "code: expected a string" in error(api.post("/admin/api/accounts/claude/oauth/complete", json={"code": ["x"]}), 400)
    assert "unknown" in error(
        api.post(
            "/admin/api/accounts/codex/oauth/complete", json={"flow_id": state, "callback_url": f"http://x/?code={code}&state={state}"}
        ),
        400,
    )
    assert "unknown or used authorization code" in error(
        api.post("/admin/api/accounts/claude/oauth/complete", json={"code": f"code-unknown#{state}"}), 400
    )
    OAuthState.update(expires_at=time.time() - 1).execute()
    assert "expired" in error(api.post("/admin/api/accounts/claude/oauth/complete", json={"code": f"{code}#{state}"}), 400)


def test_callback_login_round_trip(api, authority) -> None:
    flow = api.post("/admin/api/accounts/codex/oauth/start", json={"label": "work"}).json
    assert flow["kind"] == "callback"
    code, state = consent(flow["authorize_url"])
    url = f"http://localhost:1455/auth/callback?code={code}&scope=openid&state={state}"
    done = api.post("/admin/api/accounts/codex/oauth/complete", json={"callback_url": url}).json
    assert done["status"] == "done" and done["account"]["provider"] == "codex" and done["account"]["label"] == "work"


@pytest.mark.parametrize(("provider", "options"), [("copilot", {}), ("codex", {"device": True})])
def test_device_login_answers_pending_until_done(api, authority, provider: str, options: dict) -> None:
    flow = api.post(f"/admin/api/accounts/{provider}/oauth/start", json=options).json
    assert flow["kind"] == "device" and flow["user_code"] and flow["verification_uri"] == authority.url + "/device"
    pending = api.post(f"/admin/api/accounts/{provider}/oauth/complete", json={"flow_id": flow["flow_id"]})
    assert pending.status_code == 202 and pending.json["status"] == "pending" and pending.json["flow_id"] == flow["flow_id"]
    authority.approve(flow["user_code"])
    done = api.post(f"/admin/api/accounts/{provider}/oauth/complete", json={"flow_id": flow["flow_id"]})
    assert done.status_code == 200 and done.json["status"] == "done" and done.json["account"]["provider"] == provider
    assert "unknown" in error(api.post(f"/admin/api/accounts/{provider}/oauth/complete", json={"flow_id": flow["flow_id"]}), 400)


# -- keys ---------------------------------------------------------------------------------------------------


# -- usage and the rest ------------------------------------------------------------------------------------


# -- the proxy follows within a second -------------------------------------------------------------------------


def test_a_key_revoked_through_the_api_is_refused_by_the_proxy_within_a_second(kleis, store, config, test_providers) -> None:
    admin_api = Api(create_app(store, config, {"TESTING": True}).test_client())
    request = {"model": "loop/claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    kleis.add_account()
    with httpx.Client(base_url=kleis.url, timeout=10) as proxy:
        assert proxy.post("/v1/messages", json=request, headers=kleis.headers()).status_code == 200
        revoked_at = time.time()
        assert admin_api.post(f"/admin/api/keys/{kleis.key_id}/revoke").status_code == 200
        while True:
            response = proxy.post("/v1/messages", json=request, headers=kleis.headers())
            if response.status_code == 401:
                break
            assert time.time() - revoked_at < 1.0, "the proxy still accepts the revoked key after 1 s"
            time.sleep(0.02)
    assert "revoked" in response.json()["error"]["message"] and time.time() - revoked_at < 1.0


def test_a_new_primary_set_through_the_api_is_used_within_a_second(kleis, store, config, test_providers) -> None:
    admin_api = Api(create_app(store, config, {"TESTING": True}).test_client())
    request = {"model": "loop/claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    first, second = kleis.add_account("acct-a", primary=True), kleis.add_account("acct-b")
    with httpx.Client(base_url=kleis.url, timeout=10) as proxy:
        proxy.post("/v1/messages", json=request, headers=kleis.headers())
        assert kleis.anthropic.last("/v1/messages").headers["x-loop-account"] == str(first.id)
        changed_at = time.time()
        assert admin_api.post(f"/admin/api/accounts/{second.id}/primary").status_code == 200
        for turn in itertools.count():  # new conversations (an ongoing one keeps its account: session affinity)
            fresh = {**request, "messages": [{"role": "user", "content": f"new task {turn}"}]}
            proxy.post("/v1/messages", json=fresh, headers=kleis.headers())
            if kleis.anthropic.last("/v1/messages").headers["x-loop-account"] == str(second.id):
                break
            assert time.time() - changed_at < 1.0, "the proxy still uses the old primary after 1 s"
            time.sleep(0.02)
