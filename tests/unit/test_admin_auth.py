"""Admin authentication: login and logout, the session cookie and its key, CSRF, throttling, the bearer API."""

from __future__ import annotations

import re
import time

import pytest
from flask import Flask

from admin import create_app
from admin.security import LoginThrottle, session_signing_key
from store.accounts import find_account
from store.models import Setting
from tests.support.admin import SECRET, add_account, csrf_token, login, submit, text

PUBLIC = {"auth.login", "static", "root"}


def test_pages_redirect_to_login_and_come_back_after_it(web) -> None:
    response = web.get("/admin/keys")
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login?next=/admin/keys"
    token = csrf_token(web, response.headers["Location"])
    logged = web.post("/admin/login", data={"secret": SECRET, "csrf_token": token, "next": "/admin/keys"})
    assert logged.status_code == 303 and logged.headers["Location"] == "/admin/keys"
    assert web.get("/admin/keys").status_code == 200


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/admin", "/\\evil.example", "javascript:alert(1)", "/elsewhere"]
)
def test_login_never_redirects_off_the_admin(web, target: str) -> None:
    response = web.post("/admin/login", data={"secret": SECRET, "csrf_token": csrf_token(web), "next": target})
    assert response.headers["Location"] == "/admin/accounts"


def test_every_route_needs_auth(app: Flask, web) -> None:
    """Deny by default: each rule of the app, without a session or bearer, redirects to login (pages) or gets 401 JSON."""
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        path = rule.rule.replace("<provider>", "claude").replace("<ident>", "1").replace("<action>", "reset")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = web.open(path, method=method)
            if rule.rule.startswith("/admin/api") or rule.rule == "/metrics":  # bearer only (a scraper has no session)
                assert response.status_code == 401 and response.is_json, (method, path)
                assert response.json["error"]["type"] == "unauthorized"
            else:
                assert response.status_code == 302 and response.headers["Location"].startswith("/admin/login"), (
                    method,
                    path,
                    response.status_code,
                )
            checked += 1
    assert checked >= 25


def test_wrong_secret_is_refused_and_logout_ends_the_session(web) -> None:
    response = web.post("/admin/login", data={"secret": "nope", "csrf_token": csrf_token(web)})
    assert response.status_code == 401 and "Wrong admin secret" in text(response)
    login(web)
    assert web.get("/admin/accounts").status_code == 200
    assert submit(web, "/admin/logout").status_code == 303
    assert web.get("/admin/accounts").status_code == 302


def test_logout_ends_copies_of_the_cookie_but_not_other_sessions(app, web) -> None:
    login(web)
    copied = app.test_client()
    copied.set_cookie("kleis_admin_session", web.get_cookie("kleis_admin_session").value)
    other = app.test_client()
    login(other)
    assert copied.get("/admin/accounts").status_code == 200 and other.get("/admin/accounts").status_code == 200
    assert submit(web, "/admin/logout").status_code == 303
    response = copied.get("/admin/accounts")
    assert response.status_code == 302 and response.headers["Location"].startswith("/admin/login")
    assert copied.get("/admin/keys", headers={"Accept": "application/json"}).status_code == 401
    assert other.get("/admin/accounts").status_code == 200  # only the session that logged out ended
    [ended] = Setting.select().where(Setting.key.startswith("admin_logout:"))
    assert float(ended.value) > time.time() + 11 * 3600


def test_session_cookie_flags_and_secure_over_tls(web) -> None:
    cookie = login(web).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    tls = web.application.test_client()
    token = csrf_token(tls, "https://localhost/admin/login")
    response = tls.post(
        "https://localhost/admin/login", data={"secret": SECRET, "csrf_token": token}, headers={"Referer": "https://localhost/admin/login"}
    )
    assert response.status_code == 303 and "Secure" in response.headers["Set-Cookie"]


def test_session_key_is_derived_and_a_new_admin_secret_logs_everyone_out(store, config, test_providers) -> None:
    key = session_signing_key(store)
    assert re.fullmatch(r"[0-9a-f]{64}", key) and SECRET not in key
    assert session_signing_key(store) == key  # stable for this store and secret (every process agrees)
    first = create_app(store, config, {"TESTING": True})
    client = first.test_client()
    login(client)
    cookie = client.get_cookie("kleis_admin_session")
    store.admin_secret = "a-new-admin-secret"
    try:
        second = create_app(store, config, {"TESTING": True})
        assert second.config["SECRET_KEY"] != key
        other = second.test_client()
        other.set_cookie("kleis_admin_session", cookie.value)
        assert other.get("/admin/accounts").status_code == 302  # the old session is refused
    finally:
        store.admin_secret = SECRET


def test_forms_need_the_csrf_token(admin, store) -> None:
    account = add_account(store)
    for path, data in [
        ("/admin/keys", {"name": "x"}),
        (f"/admin/accounts/{account}/disable", {}),
        (f"/admin/accounts/{account}/remove", {"confirm": "yes"}),
        ("/admin/logout", {}),
    ]:
        response = admin.post(path, data=data)
        assert response.status_code == 400 and "Form refused" in text(response), path
        forged = admin.post(path, data={**data, "csrf_token": "forged"})
        assert forged.status_code == 400, path
    assert admin.get("/admin/accounts").status_code == 200  # still logged in, nothing changed
    assert find_account(account).status == "active"


def test_every_form_route_refuses_a_post_without_the_csrf_token(app: Flask, admin, store) -> None:
    """Every state-changing page route, enumerated from the app (the JSON API takes a bearer instead)."""
    account = add_account(store)
    checked = []
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.rule.startswith("/admin/api") or rule.endpoint in PUBLIC:
            continue
        path = rule.rule.replace("<provider>", "claude").replace("<ident>", str(account)).replace("<int:account_id>", str(account))
        path = (
            path.replace("<action>", "disable").replace("<int:key_id>", "1").replace("<key_id>", "1").replace("<account_id>", str(account))
        )
        assert "<" not in path, f"unfilled route parameter in {rule.rule}"
        for data in ({}, {"csrf_token": "forged"}):
            response = admin.post(path, data=data)
            assert response.status_code == 400 and "Form refused" in text(response), (path, response.status_code)
        checked.append(rule.rule)
    assert len(checked) >= 8, checked
    assert find_account(account).status == "active"


def test_login_itself_needs_the_csrf_token(web) -> None:
    assert web.post("/admin/login", data={"secret": SECRET}).status_code == 400


def fake_time(app: Flask) -> tuple[list[float], list[float]]:
    """A throttle on a fake clock whose delays advance the clock (and are recorded) instead of sleeping."""
    now, slept = [1000.0], []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    app.extensions["kleis_throttle"] = LoginThrottle(clock=lambda: now[0], sleep=sleep)
    return now, slept


def test_failed_logins_slow_further_attempts(app: Flask, web) -> None:
    now, slept = fake_time(app)
    token = csrf_token(web)
    for _ in range(3):
        assert web.post("/admin/login", data={"secret": "wrong", "csrf_token": token}).status_code == 401
    fourth = web.post("/admin/login", data={"secret": "wrong", "csrf_token": token})
    assert fourth.status_code == 401 and "wait 1 s" in text(fourth) and slept == []
    locked = web.post("/admin/login", data={"secret": "wrong", "csrf_token": token})
    assert locked.status_code == 429 and "still accepted" in text(locked) and slept == [2.0]  # checked after a delay
    assert app.extensions["kleis_throttle"].retry_after("127.0.0.1") >= 2  # and the lockout grew (1 s, now 2 s)
    assert web.post("/admin/login", data={"secret": SECRET, "csrf_token": token}).status_code == 303  # the operator gets in
    assert slept == [2.0, 2.0]
    assert app.extensions["kleis_throttle"].retry_after("127.0.0.1") == 0  # success clears the address


def test_a_lockout_lets_the_right_secret_in_after_a_short_delay(app: Flask, web) -> None:
    """Any local user shares 127.0.0.1: failing on purpose must not keep the operator out for minutes."""
    app.extensions["kleis_throttle"] = LoginThrottle(locked_delay=0.2)
    attacker = app.test_client()
    token = csrf_token(attacker)
    for _ in range(12):  # past the free attempts: a lockout of minutes
        attacker.post("/admin/login", data={"secret": "guess", "csrf_token": token})
    assert app.extensions["kleis_throttle"].retry_after("127.0.0.1") > 60
    started = time.monotonic()
    login(web)  # 303
    assert 0.2 <= time.monotonic() - started < 2
    assert web.get("/admin/keys").status_code == 200


def test_only_one_locked_attempt_per_address_is_checked_at_a_time() -> None:
    checked: list[str | None] = []
    throttle = LoginThrottle(free_attempts=0, sleep=lambda _: None)
    throttle.failed("a")
    assert throttle._hold("a")  # an attempt from "a" is being checked
    busy = throttle.attempt("a", "right", lambda presented: checked.append(presented) or True)
    assert not busy.ok and busy.retry_after > 0 and checked == []  # refused unchecked: no second guess meanwhile
    assert throttle.attempt("b", "right", lambda presented: True).ok  # other addresses are not held up


def test_throttle_is_per_address_capped_and_forgets() -> None:
    now = [0.0]
    throttle = LoginThrottle(free_attempts=1, max_delay=8, forget_after=60, clock=lambda: now[0])
    delays = [throttle.failed("a") for _ in range(7)]
    assert delays == [0, 1, 2, 4, 8, 8, 8]
    assert throttle.retry_after("b") == 0
    now[0] += 100
    assert throttle.retry_after("a") == 0 and throttle.failed("a") == 0  # forgotten


def test_api_takes_the_bearer_never_the_cookie(admin, api) -> None:
    assert api.get("/admin/api/accounts").status_code == 200
    cookie_only = admin.get("/admin/api/accounts")
    assert cookie_only.status_code == 401 and cookie_only.is_json
    assert cookie_only.headers["WWW-Authenticate"].startswith("Bearer")
    for header in ("Bearer wrong", "Basic " + SECRET, f"Bearer {SECRET}x", "Bearer", "Bearer é"):
        response = admin.get("/admin/api/accounts", headers={"Authorization": header})
        assert response.status_code == 401 and response.is_json, header
    # a bearer-authenticated write needs no CSRF token; without the bearer it is 401, not a CSRF error or a redirect
    assert api.post("/admin/api/keys", json={"name": "ci"}).status_code == 201
    anonymous = admin.post("/admin/api/keys", json={"name": "ci"})
    assert anonymous.status_code == 401 and anonymous.is_json


def test_wrong_bearers_are_throttled_too(app: Flask, api) -> None:
    now, slept = fake_time(app)
    for _ in range(4):
        assert api.get("/admin/api/keys", headers={"Authorization": "Bearer guess"}).status_code == 401
    locked = api.get("/admin/api/keys", headers={"Authorization": "Bearer guess"})
    assert locked.status_code == 429 and locked.json["error"]["type"] == "rate_limited" and slept == [2.0]
    assert int(locked.headers["Retry-After"]) >= 2
    missing = api.get("/admin/api/keys", headers={"Authorization": ""})
    assert missing.status_code == 429 and slept == [2.0]  # no secret, no guess: refused at once
    assert api.get("/admin/api/keys").status_code == 200 and slept == [2.0, 2.0]  # the right bearer, after the delay


def test_security_headers(web) -> None:
    response = web.get("/admin/login")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert web.get("/admin/static/admin.css").status_code == 200  # static files need no login


def test_root_redirects_to_the_accounts(web) -> None:
    assert web.get("/").headers["Location"] == "/admin/accounts"


def test_create_app_without_arguments_opens_the_store_from_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KLEIS_DATA_DIR", str(tmp_path / "env-data"))
    monkeypatch.setenv("KLEIS_ADMIN_SECRET", "from-the-environment")
    app = create_app(test_config={"TESTING": True})
    try:
        store = app.extensions["kleis_store"]
        assert store.config.data_dir == tmp_path / "env-data" and (tmp_path / "env-data" / "kleis.db").exists()
        client = app.test_client()
        login(client, "from-the-environment")
        assert client.get("/admin/keys").status_code == 200
    finally:
        app.extensions["kleis_store"].close()
