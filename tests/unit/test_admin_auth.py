"""Admin authentication: login and logout, the session cookie and its key, CSRF, throttling, the bearer API.
Here the parts that need no socket; through listeners: tests/e2e/test_admin_auth.py."""

from __future__ import annotations

from admin import create_app
from admin.security import LoginThrottle
from tests.support.admin import login


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
