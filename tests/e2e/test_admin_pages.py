"""The admin pages through Flask's test client: accounts and why, actions, add-account flows, keys, usage.
Here the parts that need a listener; the rest: tests/unit/test_admin_pages.py."""

from __future__ import annotations

import re
import time

import pytest

from store import accounts as account_store
from store.models import Account, OAuthState
from tests.fakes.admin_providers import TERMS, consent
from tests.support.admin import add_account, csrf_token, submit, text


def flow_page(client, provider: str) -> str:
    started = submit(client, f"/admin/accounts/add/{provider}", page=f"/admin/accounts/add/{provider}")
    assert started.status_code == 303 and started.headers["Location"] == f"/admin/accounts/add/{provider}/flow"
    return text(client.get(started.headers["Location"]))


def authorize_url(page: str) -> str:
    return re.search(r'id="authorize-link" href="([^"]+)"', page).group(1).replace("&amp;", "&")


# -- accounts: state and why ----------------------------------------------------------------------


# -- account actions ------------------------------------------------------------------------------------


def test_refresh_now_runs_the_providers_refresh(admin, store, authority) -> None:
    access, refresh = authority.seed()
    row, _ = account_store.upsert_account("claude", "fresh", account_store.TokenSet(access, refresh, time.time() + 60), store.cipher)
    submit(admin, f"/admin/accounts/{row.id}/refresh")
    page = text(admin.get("/admin/accounts"))
    assert "refreshed; its token expires in 59m" in page and "refresh ok" in page
    assert authority.refresh_calls == 1 and access not in page


def test_a_failed_refresh_says_why_and_marks_the_account(admin, store, authority) -> None:
    account = add_account(store, "stale")  # its refresh token is unknown to the authority: invalid_grant
    submit(admin, f"/admin/accounts/{account}/refresh")
    page = text(admin.get("/admin/accounts"))
    assert "needs a new login" in page and "flash-error" in page
    assert account_store.find_account(account).status == "needs_reauth"


# -- adding accounts ---------------------------------------------------------------------------------------


def test_paste_login_round_trip(admin, authority) -> None:
    start = text(admin.get("/admin/accounts/add/claude"))
    assert TERMS in start and 'id="start-device"' not in start
    page = flow_page(admin, "claude")
    assert TERMS in page and 'name="code"' in page
    assert text(admin.get("/admin/accounts/add/claude/flow")) == page  # a reload shows the same login
    code, state = consent(authorize_url(page))
    wrong = submit(admin, "/admin/accounts/add/claude/complete", {"code": f"{code}#not-the-state"}, page="/admin/accounts/add/claude/flow")
    assert wrong.headers["Location"] == "/admin/accounts/add/claude/flow"
    assert "does not match" in text(admin.get("/admin/accounts/add/claude/flow"))
    done = submit(admin, "/admin/accounts/add/claude/complete", {"code": f"{code}#{state}"}, page="/admin/accounts/add/claude/flow")
    row = Account.get(Account.identity == "user-1")
    assert done.status_code == 303 and done.headers["Location"] == f"/admin/accounts#account-{row.id}"
    assert row.provider == "claude" and row.is_primary and row.email == "ada@example.test"
    assert "claude account" in text(admin.get("/admin/accounts")) and OAuthState.select().count() == 0
    assert admin.get("/admin/accounts/add/claude/flow").status_code == 303  # the finished login is gone


def test_callback_login_round_trip_and_empty_answer(admin, authority) -> None:
    page = flow_page(admin, "codex")
    assert 'name="callback_url"' in page and "TEST TERMS" not in page
    empty = submit(admin, "/admin/accounts/add/codex/complete", {"callback_url": " "}, page="/admin/accounts/add/codex/flow")
    assert "paste the full address" in text(admin.get(empty.headers["Location"]))
    code, state = consent(authorize_url(page))
    url = f"http://localhost:1455/auth/callback?code={code}&scope=openid&state={state}"
    submit(admin, "/admin/accounts/add/codex/complete", {"callback_url": url}, page="/admin/accounts/add/codex/flow")
    assert Account.get(Account.identity == "user-1").provider == "codex"


@pytest.mark.parametrize("provider", ["copilot", "codex"])
def test_device_login_polls_until_approved(admin, authority, provider: str) -> None:
    if provider == "codex":
        started = submit(admin, "/admin/accounts/add/codex", {"device": "1"}, page="/admin/accounts/add/codex")
        page = text(admin.get(started.headers["Location"]))
    else:
        assert TERMS in text(admin.get("/admin/accounts/add/copilot"))
        page = flow_page(admin, provider)
    user_code = re.search(r'id="user-code">([^<]+)<', page).group(1)
    assert "data-poll-url" in page and authority.url + "/device" in page
    token = csrf_token(admin, f"/admin/accounts/add/{provider}/flow")
    poll = admin.post(f"/admin/accounts/add/{provider}/poll", headers={"X-CSRFToken": token, "Accept": "application/json"})
    assert poll.json["status"] == "pending" and poll.json["interval"] == 1
    check = submit(admin, f"/admin/accounts/add/{provider}/complete", page=f"/admin/accounts/add/{provider}/flow")  # the no-JS button
    assert "waiting for the code" in text(admin.get(check.headers["Location"]))
    authority.approve(user_code)
    done = admin.post(f"/admin/accounts/add/{provider}/poll", headers={"X-CSRFToken": token, "Accept": "application/json"})
    row = Account.get(Account.identity == "user-1")
    assert done.json == {"status": "done", "message": done.json["message"], "redirect": f"/admin/accounts#account-{row.id}"}
    assert row.provider == provider


def test_poll_needs_csrf_and_a_session(admin, web, authority) -> None:
    flow_page(admin, "copilot")
    assert admin.post("/admin/accounts/add/copilot/poll", headers={"Accept": "application/json"}).json["error"]["type"] == "csrf_failed"
    anonymous = web.post("/admin/accounts/add/copilot/poll", headers={"Accept": "application/json"})
    assert anonymous.status_code == 401 and anonymous.json["error"]["type"] == "unauthorized"


def test_expired_or_missing_logins(admin, authority) -> None:
    assert admin.get("/admin/accounts/add/claude/flow").status_code == 303
    nothing = submit(admin, "/admin/accounts/add/claude/complete", {"code": "a#b"})
    assert "no login in progress" in text(admin.get(nothing.headers["Location"], follow_redirects=True))
    flow_page(admin, "claude")
    OAuthState.update(expires_at=time.time() - 1).execute()
    with admin.session_transaction() as session:
        session["logins"] = {"claude": {**session["logins"]["claude"], "expires_at": time.time() - 1}}
    assert "This login expired" in text(admin.get("/admin/accounts/add/claude/flow"))
    with admin.session_transaction() as session:
        state = session["logins"]["claude"]["flow_id"]
    late = submit(admin, "/admin/accounts/add/claude/complete", {"code": f"abc#{state}"}, page="/admin/accounts/add/claude/flow")
    assert "this claude login expired; start it again" in text(admin.get(late.headers["Location"]))


# -- keys -----------------------------------------------------------------------------------------------


# -- usage -------------------------------------------------------------------------------------------------
