"""Kleis configuration: every setting read from the environment in one place (the table is core.settings)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from datetime import tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from core import setting_values
from core.exceptions import ConfigError
from core.settings import SETTINGS, Setting

__all__ = ["SETTINGS", "Config", "Setting", "load_config", "settings_help", "default_of", "env_of"]


@dataclasses.dataclass(frozen=True)
class Config:
    data_dir: Path
    database_url: str
    secret_key: str
    admin_secret: str
    host: str
    port: int
    public_url: str
    admin_host: str
    admin_port: int
    admin_trusted_proxy: str
    log_level: str
    max_body_bytes: int
    upstream_timeout: float
    shutdown_grace: float
    sse_keepalive: float
    refresh_skew: float
    claude_api_base: str
    claude_auth_base: str
    claude_authorize_url: str
    claude_code_version: str
    claude_extra_betas: str
    codex_api_base: str
    codex_auth_base: str
    codex_originator: str
    codex_client_version: str
    codex_removed_params: str
    github_base: str
    github_api_base: str
    copilot_api_base: str
    copilot_client_id: str
    github_domain: str
    copilot_editor_version: str
    copilot_plugin_version: str
    copilot_api_version: str
    copilot_direct_user_agent: str
    models_dev_url: str
    models_ttl: float
    custom_models: str
    cooldown_max: float
    routing: str
    quota_threshold: float
    session_ttl: float
    account_max_inflight: int
    account_wait: float
    usage_retention_days: int
    timezone: str
    metrics_public: bool
    translation: bool
    model_map: str

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'kleis.db').resolve()}"

    @property
    def tz(self) -> tzinfo:
        return ZoneInfo(self.timezone)

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Read every KLEIS_* setting; raise ConfigError naming the first bad variable."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env, setting.default).strip()
        try:
            values[setting.field] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{setting.env}: {exc}") from None
    values["data_dir"] = Path(values["data_dir"]).expanduser()
    if values["github_domain"]:
        values.update(_enterprise_hosts(values["github_domain"], environ))
    return Config(**values)


def _enterprise_hosts(domain: str, environ: Mapping[str, str]) -> dict[str, str]:
    """GitHub Enterprise (ghe.com): derive the GitHub hosts unless set explicitly."""
    domain = domain.removeprefix("https://").rstrip("/")
    derived = {
        "github_base": ("KLEIS_GITHUB_BASE", f"https://{domain}"),
        "github_api_base": ("KLEIS_GITHUB_API_BASE", f"https://api.{domain}"),
        "copilot_api_base": ("KLEIS_COPILOT_API_BASE", f"https://copilot-api.{domain}"),
    }
    return {field: setting_values.url(environ[env]) if environ.get(env) else url for field, (env, url) in derived.items()}


def default_of(field: str) -> str:
    """The built-in default of the setting behind a Config field (as its environment text)."""
    return next(setting.default for setting in SETTINGS if setting.field == field)


def env_of(field: str) -> str:
    """The KLEIS_* variable behind a Config field."""
    return next(setting.env for setting in SETTINGS if setting.field == field)


def settings_help() -> str:
    """The environment variables, formatted for `kleis.py --help`."""
    lines = ["environment variables (all optional):"]
    for setting in SETTINGS:
        default = setting.default or "(empty)"
        lines.append(f"  {setting.env}  [default: {default}]")
        lines.append(f"      {setting.help}")
    return "\n".join(lines)
