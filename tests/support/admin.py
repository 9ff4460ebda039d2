"""Helpers of the admin tests: the JSON API client, CSRF-aware form posts, the login, a seeded account."""

from __future__ import annotations

import html
import re
import time
from typing import Any

from flask.testing import FlaskClient

from store.accounts import TokenSet, upsert_account
from store.db import Store
from tests.support.env import ADMIN_SECRET

SECRET = ADMIN_SECRET
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


class Api:
    """The JSON API with the bearer header."""

    def __init__(self, client: FlaskClient, secret: str = SECRET) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {secret}"}

    def __getattr__(self, method: str):
        call = getattr(self.client, method)
        return lambda path, **kw: call(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)


def csrf_token(client: FlaskClient, page: str = "/admin/login") -> str:
    found = CSRF_FIELD.search(client.get(page).get_data(as_text=True))
    assert found, f"no CSRF token on {page}"
    return found.group(1)


def login(client: FlaskClient, secret: str = SECRET):
    response = client.post("/admin/login", data={"secret": secret, "csrf_token": csrf_token(client)})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


def submit(client: FlaskClient, path: str, data: dict[str, Any] | None = None, page: str = "/admin/accounts", **kw: Any):
    """POST a form the way the page does: with the CSRF token the page carries."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, page)}, **kw)


def add_account(store: Store, identity: str = "acct-1", provider: str = "claude", **kw: Any) -> int:
    tokens = TokenSet(
        f"sk-test-access-{identity}", f"sk-test-refresh-{identity}", time.time() + 3600, {"plan": "max", "id_token": "sk-test-idtoken"}
    )
    row, _ = upsert_account(provider, identity, tokens, store.cipher, email=f"{identity}@example.test", **kw)
    return row.id


def text(response) -> str:
    """The body with HTML entities resolved (so assertions read as the page does)."""
    return html.unescape(response.get_data(as_text=True))
