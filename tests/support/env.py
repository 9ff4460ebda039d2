"""The environment every test runs in: all upstreams at a closed loopback port, a configuration in a temporary dir."""

from __future__ import annotations

from pathlib import Path

from core.config import Config, load_config
from store.crypto import new_secret_key

ROOT = Path(__file__).resolve().parent.parent.parent  # the repository

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
ADMIN_SECRET = "admin-test-secret"


def make_config(data_dir: Path, **overrides: object) -> Config:
    env = dict(LOOPBACK_ENV, KLEIS_DATA_DIR=str(data_dir), KLEIS_SECRET_KEY=new_secret_key(), KLEIS_ADMIN_SECRET=ADMIN_SECRET)
    return load_config(env).replace(**overrides)
