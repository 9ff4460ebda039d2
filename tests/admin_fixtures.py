"""Fixtures for the admin tests: the app on a temporary store with the test providers, a logged-in client, the API."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from admin import create_app
from core.config import Config
from providers import registry
from store.accounts import TokenSet, upsert_account
from store.db import Store
from tests.admin_providers import TEST_PROVIDERS, LoginAuthority, TestProvider

SECRET = "admin-test-secret"  # tests.conftest.make_config sets it
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def authority(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoginAuthority]:
    fake = LoginAuthority().start()
    monkeypatch.setattr(TestProvider, "authority", fake)
    yield fake
    fake.stop()


@pytest.fixture
def test_providers(monkeypatch: pytest.MonkeyPatch, authority: LoginAuthority) -> LoginAuthority:
    """Claude, Codex and Copilot replaced by the test providers (one per login kind)."""
    monkeypatch.setattr(registry, "PROVIDER_CLASSES", dict(TEST_PROVIDERS))
    return authority


@pytest.fixture
def app(store: Store, config: Config, test_providers: LoginAuthority) -> Flask:
    return create_app(store, config, {"TESTING": True})


@pytest.fixture
def web(app: Flask) -> FlaskClient:
    """A browser-like client that is not logged in."""
    return app.test_client()


@pytest.fixture
def admin(app: Flask) -> FlaskClient:
    """A logged-in client."""
    client = app.test_client()
    login(client)
    return client


class Api:
    """The JSON API with the bearer header."""

    def __init__(self, client: FlaskClient, secret: str = SECRET) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {secret}"}

    def __getattr__(self, method: str):  # type: ignore[no-untyped-def]
        call = getattr(self.client, method)
        return lambda path, **kw: call(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


def csrf_token(client: FlaskClient, page: str = "/admin/login") -> str:
    found = CSRF_FIELD.search(client.get(page).get_data(as_text=True))
    assert found, f"no CSRF token on {page}"
    return found.group(1)


def login(client: FlaskClient, secret: str = SECRET):  # type: ignore[no-untyped-def]
    response = client.post("/admin/login", data={"secret": secret, "csrf_token": csrf_token(client)})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


def submit(client: FlaskClient, path: str, data: dict[str, Any] | None = None, page: str = "/admin/accounts", **kw: Any):  # type: ignore[no-untyped-def]
    """POST a form the way the page does: with the CSRF token the page carries."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, page)}, **kw)


def add_account(store: Store, identity: str = "acct-1", provider: str = "claude", **kw: Any) -> int:
    tokens = TokenSet(
        f"sk-test-access-{identity}", f"sk-test-refresh-{identity}", time.time() + 3600, {"plan": "max", "id_token": "sk-test-idtoken"}
    )
    row, _ = upsert_account(provider, identity, tokens, store.cipher, email=f"{identity}@example.test", **kw)
    return row.id


def text(response) -> str:  # type: ignore[no-untyped-def]
    """The body with HTML entities resolved (so assertions read as the page does)."""
    return html.unescape(response.get_data(as_text=True))
