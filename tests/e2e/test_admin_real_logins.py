"""The admin API's login round trips with the real providers against their fakes (no test providers in between):
Claude paste, Codex callback and device, Copilot device; the label typed in the form lands on the account."""

from __future__ import annotations

import json
import time

import pytest
from flask import Flask

from admin import create_app
from core.config import Config
from store.models import Account, OAuthState
from tests.fakes.claude import pasted_code
from tests.fakes.codex_auth import FakeCodexAuth
from tests.fakes.oauth import FakeOAuth
from tests.support.admin import Api


@pytest.fixture
def real_api(store, copilot_config: Config, claude_auth: FakeOAuth, codex_auth: FakeCodexAuth) -> Api:
    cfg = copilot_config.replace(
        claude_auth_base=claude_auth.url,
        claude_authorize_url=f"{claude_auth.url}/oauth/authorize",
        codex_auth_base=codex_auth.url,
    )
    app: Flask = create_app(store, cfg, {"TESTING": True})
    return Api(app.test_client())


def started(api: Api, provider: str, **body) -> dict:
    response = api.post(f"/admin/api/accounts/{provider}/oauth/start", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def completed(api: Api, provider: str, body: dict, pending_ok: bool = False) -> tuple[int, dict]:
    response = api.post(f"/admin/api/accounts/{provider}/oauth/complete", json=body)
    assert response.status_code in ((200, 202) if pending_ok else (200,)), response.get_data(as_text=True)
    return response.status_code, response.json


def test_claude_paste_login_through_the_api_keeps_the_label(real_api, claude_auth) -> None:
    start = started(real_api, "claude", label="  team max  ")
    assert start["kind"] == "paste" and "Anthropic" in start["warning"]
    pasted = pasted_code(start["authorize_url"])
    assert pasted.endswith(f"#{start['flow_id']}")
    _, done = completed(real_api, "claude", {"flow_id": start["flow_id"], "code": pasted})
    assert done["status"] == "done" and done["account"]["label"] == "team max" and done["account"]["is_primary"]
    assert claude_auth.last("/v1/oauth/token").json["code_verifier"]  # PKCE checked by the fake
    assert OAuthState.select().count() == 0


def test_codex_callback_login_through_the_api(real_api, codex_auth) -> None:
    start = started(real_api, "codex", label="chatgpt plus")
    _, done = completed(real_api, "codex", {"flow_id": start["flow_id"], "callback_url": codex_auth.consent(start["authorize_url"])})
    account = done["account"]
    assert account["label"] == "chatgpt plus" and account["email"] == "alice@example.test" and account["status"] == "active"
    shown = json.dumps(done)
    assert codex_auth.issued_access and not any(token in shown for token in codex_auth.issued_access)  # never a token


def test_codex_device_login_through_the_api_is_pending_then_done(real_api, codex_auth) -> None:
    codex_auth.device_interval = "1"
    start = started(real_api, "codex", device=True)
    assert start["kind"] == "device" and start["user_code"]
    codex_auth.approve(start["user_code"])
    statuses = []
    for _ in range(10):
        status, result = completed(real_api, "codex", {"flow_id": start["flow_id"]}, pending_ok=True)
        statuses.append(result["status"])
        if status == 200:
            break
        time.sleep(min(result.get("interval") or 1, 1.5))
    assert statuses[-1] == "done" and result["account"]["provider"] == "codex"
    assert Account.select().where(Account.provider == "codex").count() == 1


def test_copilot_device_login_through_the_api_keeps_the_label(real_api, github) -> None:
    start = started(real_api, "copilot", label="work github")
    assert start["kind"] == "device" and start["verification_uri"] == f"{github.url}/login/device" and "GitHub" in start["warning"]
    statuses = []
    for _ in range(20):
        time.sleep(0.25)
        status, result = completed(real_api, "copilot", {"flow_id": start["flow_id"]}, pending_ok=True)
        statuses.append(result["status"])
        if status == 200:
            break
    assert statuses[0] == "pending" and statuses[-1] == "done"
    assert result["account"]["label"] == "work github" and result["account"]["provider"] == "copilot"
    assert github.too_fast_polls == 0
