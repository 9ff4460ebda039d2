"""The Copilot device flow against the fake GitHub: pending, slow_down, success, pacing, errors, modes, enterprise.
Here the parts that need no socket; through listeners: tests/e2e/test_copilot_login.py."""

from __future__ import annotations

from core.config import load_config
from tests.support.env import LOOPBACK_ENV


def test_enterprise_domain_derives_every_host(tmp_path) -> None:
    env = dict(LOOPBACK_ENV, KLEIS_DATA_DIR=str(tmp_path), KLEIS_GITHUB_DOMAIN="acme.ghe.com")
    for name in ("KLEIS_GITHUB_BASE", "KLEIS_GITHUB_API_BASE", "KLEIS_COPILOT_API_BASE"):
        env.pop(name)
    config = load_config(env)
    assert (config.github_base, config.github_api_base, config.copilot_api_base) == (
        "https://acme.ghe.com",
        "https://api.acme.ghe.com",
        "https://copilot-api.acme.ghe.com",
    )
    from providers.copilot import tokens

    assert tokens.exchange_url(config) == "https://api.acme.ghe.com/copilot_internal/v2/token"
    assert tokens.user_url(config) == "https://api.acme.ghe.com/user"
    assert tokens.api_base(config, {"api_base": "https://api.individual.githubcopilot.com"}) == "https://copilot-api.acme.ghe.com"
    assert tokens.github_host(config) == "acme.ghe.com"
