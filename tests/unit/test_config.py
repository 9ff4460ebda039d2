"""Configuration parsing: defaults, validation naming the variable, enterprise hosts, help."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import SETTINGS, load_config, settings_help
from core.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_safe() -> None:
    config = load_config({})
    assert config.host == "127.0.0.1" and config.port == 8080
    assert config.admin_host == "127.0.0.1" and config.admin_port == 8081
    assert config.claude_api_base == "https://api.anthropic.com"
    assert config.claude_auth_base == "https://platform.claude.com"
    assert config.codex_api_base == "https://chatgpt.com/backend-api/codex"
    assert config.copilot_api_base == ""
    assert config.max_body_bytes == 32 * 1024 * 1024
    assert config.effective_database_url.startswith("sqlite:///") and config.effective_database_url.endswith("data/kleis.db")


@pytest.mark.parametrize(
    ("env", "value", "fragment"),
    [
        ("KLEIS_PORT", "eighty", "KLEIS_PORT: must be a port number"),
        ("KLEIS_PORT", "70000", "KLEIS_PORT: must be between 0 and 65535"),
        ("KLEIS_ADMIN_PORT", "-1", "KLEIS_ADMIN_PORT"),
        ("KLEIS_CLAUDE_API_BASE", "ftp://x", "KLEIS_CLAUDE_API_BASE: must be an http(s) URL"),
        ("KLEIS_CODEX_AUTH_BASE", "not a url", "KLEIS_CODEX_AUTH_BASE"),
        ("KLEIS_DATABASE_URL", "mysql://x/y", "KLEIS_DATABASE_URL: must be sqlite:///<path> or postgresql"),
        ("KLEIS_DATABASE_URL", "sqlite:kleis.db", "KLEIS_DATABASE_URL: must be sqlite:///<path>"),
        ("KLEIS_MAX_BODY_BYTES", "0", "KLEIS_MAX_BODY_BYTES: must be greater than 0"),
        ("KLEIS_UPSTREAM_TIMEOUT", "soon", "KLEIS_UPSTREAM_TIMEOUT: must be a number"),
        ("KLEIS_LOG_LEVEL", "LOUD", "KLEIS_LOG_LEVEL"),
    ],
)
def test_invalid_values_name_the_variable(env: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({env: value})
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_urls_lose_trailing_slash_and_postgres_is_accepted() -> None:
    config = load_config({"KLEIS_CLAUDE_API_BASE": "http://127.0.0.1:5000/", "KLEIS_DATABASE_URL": "postgresql://u:p@h/db"})
    assert config.claude_api_base == "http://127.0.0.1:5000"
    assert config.effective_database_url == "postgresql://u:p@h/db"


def test_enterprise_domain_replaces_github_hosts() -> None:
    config = load_config({"KLEIS_GITHUB_DOMAIN": "acme.ghe.com"})
    assert config.github_base == "https://acme.ghe.com"
    assert config.github_api_base == "https://api.acme.ghe.com"
    assert config.copilot_api_base == "https://copilot-api.acme.ghe.com"
    explicit = load_config({"KLEIS_GITHUB_DOMAIN": "acme.ghe.com", "KLEIS_GITHUB_API_BASE": "http://127.0.0.1:7000"})
    assert explicit.github_api_base == "http://127.0.0.1:7000"


def test_every_setting_is_documented_in_help_and_the_configuration_doc() -> None:
    text = settings_help()
    table = (ROOT / "docs" / "configuration.md").read_text()
    for setting in SETTINGS:
        assert setting.env in text
        assert f"`{setting.env}`" in table, f"{setting.env} missing from docs/configuration.md's table"
