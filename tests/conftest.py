"""Shared fixtures: a temporary configuration and store; loopback fakes and a live Kleis come from tests/fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.config import Config, load_config  # noqa: E402
from store.crypto import new_secret_key  # noqa: E402

pytest_plugins = ["tests.fixtures"]

# Every upstream points at a closed loopback port unless a test starts a fake for it:
# nothing in the suite can reach a real provider.
CLOSED = "http://127.0.0.1:9"
LOOPBACK_ENV = {
    "KLEIS_CLAUDE_API_BASE": CLOSED,
    "KLEIS_CLAUDE_AUTH_BASE": CLOSED,
    "KLEIS_CLAUDE_AUTHORIZE_URL": CLOSED + "/oauth/authorize",
    "KLEIS_CODEX_API_BASE": CLOSED,
    "KLEIS_CODEX_AUTH_BASE": CLOSED,
    "KLEIS_GITHUB_BASE": CLOSED,
    "KLEIS_GITHUB_API_BASE": CLOSED,
    "KLEIS_COPILOT_API_BASE": CLOSED,
    "KLEIS_MODELS_DEV_URL": CLOSED + "/api.json",
}


@pytest.fixture(autouse=True)
def _no_real_upstreams(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KLEIS_"):
            monkeypatch.delenv(name)
    for name, value in LOOPBACK_ENV.items():
        monkeypatch.setenv(name, value)


def make_config(data_dir: Path, **overrides: object) -> Config:
    env = dict(LOOPBACK_ENV, KLEIS_DATA_DIR=str(data_dir), KLEIS_SECRET_KEY=new_secret_key(), KLEIS_ADMIN_SECRET="admin-test-secret")
    return load_config(env).replace(**overrides)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "data")


@pytest.fixture
def store(config: Config):
    from store.db import open_store

    opened = open_store(config)
    yield opened
    opened.close()
