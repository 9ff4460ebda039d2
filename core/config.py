"""Kleis configuration: every setting read from the environment in one place."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from datetime import tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core import versions
from core.exceptions import ConfigError
from core.numbers import parse_number


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _optional_url(value: str) -> str:
    return _url(value) if value else ""


def _port(value: str) -> int:
    return parse_number(value, int, "a port number", low=0, high=65535)


def _positive_int(value: str) -> int:
    return parse_number(value, int, "a whole number", above=0)


def _positive_float(value: str) -> float:
    return parse_number(value, float, "a number", above=0)


def _fraction(value: str) -> float:
    return parse_number(value, float, "a number", above=0, high=1)


def _count(value: str) -> int:
    return parse_number(value, int, "a whole number (0: off)", low=0)


def _routing(value: str) -> str:
    mode = value.lower()
    if mode not in ("primary", "headroom"):
        raise ValueError(f"must be primary or headroom, got {value!r}")
    return mode


def _non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"must be a number, got {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"must be 0 or more, got {value}")
    return number


def _database_url(value: str) -> str:
    if value and not value.startswith(("sqlite:///", "postgres://", "postgresql://", "postgresql+pool://", "postgres+pool://")):
        raise ValueError("must be sqlite:///<path> or postgresql://…")
    if value.startswith("sqlite:///") and value[len("sqlite:///") :] in ("", ":memory:"):
        raise ValueError("a SQLite URL needs a file path (sqlite:///path/to/kleis.db); an in-memory store would lose everything")
    return value


def _text(value: str) -> str:
    return value


_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def _host(value: str) -> str:
    """A listen address: an IP address or a host name (checked for shape; binding tells the rest)."""
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not value or len(value) > 253 or not all(_HOST_LABEL.match(label) for label in value.rstrip(".").split(".")):
        raise ValueError(f"must be an IP address or a host name, got {value!r}")
    return value


def _timezone(value: str) -> str:
    """An IANA time zone name (Europe/Berlin, UTC), checked against the system's zone database."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"must be an IANA time zone such as UTC or Europe/Berlin, got {value!r}") from None
    return value


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"must be 1 or 0, got {value!r}")


def _version(value: str) -> str:
    if not versions.is_version(value):
        raise ValueError(f"must be a version like 1.2.3, got {value!r}")
    return value


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"must be DEBUG, INFO, WARNING or ERROR, got {value!r}")
    return level


@dataclasses.dataclass(frozen=True)
class Setting:
    env: str
    field: str
    default: str
    parse: Callable[[str], Any]
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "KLEIS_DATA_DIR",
        "data_dir",
        "./data",
        _text,
        "Directory for the SQLite store, generated secrets and caches (created with mode 0700).",
    ),
    Setting(
        "KLEIS_DATABASE_URL",
        "database_url",
        "",
        _database_url,
        "Store URL. Empty: SQLite at <data dir>/kleis.db. postgresql://user:pass@host/db for a store shared by several Kleis processes.",
    ),
    Setting(
        "KLEIS_SECRET_KEY",
        "secret_key",
        "",
        _text,
        "Fernet key(s) encrypting OAuth tokens at rest; comma-separated, the first encrypts, all decrypt (rotation). "
        "Empty: generated once into <data dir>/secret.key (0600).",
    ),
    Setting(
        "KLEIS_ADMIN_SECRET",
        "admin_secret",
        "",
        _text,
        "Admin password and admin API bearer. Empty: generated once into <data dir>/admin.secret (0600) and printed on first start only.",
    ),
    Setting("KLEIS_HOST", "host", "127.0.0.1", _host, "Proxy listen address."),
    Setting("KLEIS_PORT", "port", "8080", _port, "Proxy listen port (the base URL agents use)."),
    Setting(
        "KLEIS_PUBLIC_URL",
        "public_url",
        "",
        _optional_url,
        "Base URL clients reach Kleis at, for the URLs it hands out (/models/api.json), e.g. https://kleis.example.net "
        "behind a TLS proxy. Empty: http:// and the request's Host.",
    ),
    Setting("KLEIS_ADMIN_HOST", "admin_host", "127.0.0.1", _host, "Admin page listen address."),
    Setting("KLEIS_ADMIN_PORT", "admin_port", "8081", _port, "Admin page listen port."),
    Setting(
        "KLEIS_ADMIN_TRUSTED_PROXY",
        "admin_trusted_proxy",
        "",
        _text,
        "Address of a reverse proxy in front of the admin whose X-Forwarded-Proto/-For are trusted "
        "(Secure cookie, per-client login throttling).",
    ),
    Setting("KLEIS_LOG_LEVEL", "log_level", "INFO", _log_level, "DEBUG, INFO, WARNING or ERROR."),
    Setting(
        "KLEIS_MAX_BODY_BYTES",
        "max_body_bytes",
        str(32 * 1024 * 1024),
        _positive_int,
        "Largest request body accepted (bytes); larger requests get 413.",
    ),
    Setting(
        "KLEIS_UPSTREAM_TIMEOUT",
        "upstream_timeout",
        "600",
        _positive_float,
        "Seconds to wait for an upstream's response headers before answering 504.",
    ),
    Setting(
        "KLEIS_SHUTDOWN_GRACE",
        "shutdown_grace",
        "30",
        _non_negative_float,
        "Seconds a SIGTERM/SIGINT lets requests in flight (streams too) finish before the rest are ended with an error.",
    ),
    Setting(
        "KLEIS_SSE_KEEPALIVE",
        "sse_keepalive",
        "15",
        _non_negative_float,
        "Seconds of upstream silence in a stream after which the client gets an SSE comment (': keep-alive'); 0: never.",
    ),
    Setting("KLEIS_REFRESH_SKEW", "refresh_skew", "300", _positive_float, "Refresh an access token this many seconds before it expires."),
    Setting("KLEIS_CLAUDE_API_BASE", "claude_api_base", "https://api.anthropic.com", _url, "Anthropic Messages API."),
    Setting(
        "KLEIS_CLAUDE_AUTH_BASE",
        "claude_auth_base",
        "https://platform.claude.com",
        _url,
        "Claude OAuth host: token endpoint /v1/oauth/token, paste redirect /oauth/code/callback.",
    ),
    Setting(
        "KLEIS_CLAUDE_AUTHORIZE_URL", "claude_authorize_url", "https://claude.ai/oauth/authorize", _url, "Claude OAuth authorize page."
    ),
    Setting(
        "KLEIS_CLAUDE_CODE_VERSION",
        "claude_code_version",
        "2.1.328",
        _version,
        "Claude Code version Kleis presents for clients other than Claude Code; a newer version seen from a real Claude "
        "Code, or one Claude names as required (claude_code_version_too_old), is used instead.",
    ),
    Setting(
        "KLEIS_CLAUDE_EXTRA_BETAS",
        "claude_extra_betas",
        "",
        _text,
        "Comma-separated anthropic-beta values added after the required Claude OAuth betas.",
    ),
    Setting(
        "KLEIS_CODEX_API_BASE", "codex_api_base", "https://chatgpt.com/backend-api/codex", _url, "ChatGPT Codex backend (Responses API)."
    ),
    Setting(
        "KLEIS_CODEX_AUTH_BASE", "codex_auth_base", "https://auth.openai.com", _url, "ChatGPT OAuth host (authorize, token, device flow)."
    ),
    Setting(
        "KLEIS_CODEX_ORIGINATOR",
        "codex_originator",
        "codex_cli_rs",
        _text,
        "originator header (and login parameter) Kleis presents to the Codex backend.",
    ),
    Setting(
        "KLEIS_CODEX_CLIENT_VERSION",
        "codex_client_version",
        "0.171.0",
        _version,
        "Codex CLI version Kleis presents (version header and user-agent) for clients other than Codex CLI; a newer "
        "version seen from a real Codex CLI is used instead.",
    ),
    Setting(
        "KLEIS_CODEX_REMOVED_PARAMS",
        "codex_removed_params",
        "",
        _text,
        "Comma-separated body parameters removed before the Codex backend (empty: the built-in list; see the README).",
    ),
    Setting("KLEIS_GITHUB_BASE", "github_base", "https://github.com", _url, "GitHub web host (device flow)."),
    Setting("KLEIS_GITHUB_API_BASE", "github_api_base", "https://api.github.com", _url, "GitHub API host (Copilot token exchange, /user)."),
    Setting(
        "KLEIS_COPILOT_API_BASE", "copilot_api_base", "", _optional_url, "Copilot API. Empty: taken from the Copilot token's endpoints.api."
    ),
    Setting(
        "KLEIS_COPILOT_CLIENT_ID", "copilot_client_id", "Iv1.b507a08c87ecfe98", _text, "GitHub OAuth client id for the Copilot device flow."
    ),
    Setting(
        "KLEIS_GITHUB_DOMAIN",
        "github_domain",
        "",
        _text,
        "GitHub Enterprise (ghe.com) domain; replaces github.com, api.github.com and the Copilot API host.",
    ),
    Setting(
        "KLEIS_COPILOT_EDITOR_VERSION",
        "copilot_editor_version",
        "vscode/1.126.0",
        _text,
        "Editor-Version header sent to Copilot (VS Code profile; Copilot answers 466 to editor profiles it retired).",
    ),
    Setting(
        "KLEIS_COPILOT_PLUGIN_VERSION",
        "copilot_plugin_version",
        "copilot-chat/0.54.0",
        _text,
        "Editor-Plugin-Version header sent to Copilot (its version also forms the User-Agent).",
    ),
    Setting(
        "KLEIS_COPILOT_API_VERSION",
        "copilot_api_version",
        "2026-08-01",
        _text,
        "X-GitHub-Api-Version sent on Copilot API calls (the version current VS Code sends; newer endpoints refuse older ones).",
    ),
    Setting(
        "KLEIS_COPILOT_DIRECT_USER_AGENT",
        "copilot_direct_user_agent",
        "opencode/1.18.33",
        _text,
        "User-Agent for direct-mode Copilot accounts (a token the exchange refuses, e.g. OpenCode's own app): that app's "
        "profile, without VS Code's editor headers.",
    ),
    Setting(
        "KLEIS_MODELS_DEV_URL", "models_dev_url", "https://models.dev/api.json", _url, "models.dev registry merged into /models/api.json."
    ),
    Setting("KLEIS_MODELS_TTL", "models_ttl", "3600", _positive_float, "Seconds the models.dev copy is kept before it is fetched again."),
    Setting("KLEIS_CUSTOM_MODELS", "custom_models", "", _text, "Path of a JSON file with extra models for the kleis registry entry."),
    Setting(
        "KLEIS_COOLDOWN_MAX",
        "cooldown_max",
        "21600",
        _positive_float,
        "Longest cooldown (seconds) a provider's rate-limit reset can impose on an account.",
    ),
    Setting(
        "KLEIS_ROUTING",
        "routing",
        "primary",
        _routing,
        "primary: the primary account serves until it is saving or cooling; headroom: new conversations go to the account "
        "with the most subscription quota left.",
    ),
    Setting(
        "KLEIS_QUOTA_THRESHOLD",
        "quota_threshold",
        "0.95",
        _fraction,
        "An account whose quota window is used this much (0–1), or refused, is saving: new conversations go elsewhere first.",
    ),
    Setting(
        "KLEIS_SESSION_TTL",
        "session_ttl",
        "3600",
        _positive_float,
        "Seconds a conversation keeps its account after its last request (session affinity).",
    ),
    Setting(
        "KLEIS_ACCOUNT_MAX_INFLIGHT",
        "account_max_inflight",
        "0",
        _count,
        "Requests in flight per account; past it a request goes to another account or waits (0: no cap).",
    ),
    Setting(
        "KLEIS_ACCOUNT_WAIT",
        "account_wait",
        "10",
        _positive_float,
        "Seconds a request waits for an account below KLEIS_ACCOUNT_MAX_INFLIGHT before it is refused with 503.",
    ),
    Setting("KLEIS_USAGE_RETENTION_DAYS", "usage_retention_days", "90", _positive_int, "Usage events older than this are deleted daily."),
    Setting(
        "KLEIS_TIMEZONE",
        "timezone",
        "UTC",
        _timezone,
        "Time zone of the calendar budget windows (day, week from Monday, month) and of the admin's usage days and charts. "
        "Every process on one store must use the same.",
    ),
    Setting(
        "KLEIS_METRICS_PUBLIC",
        "metrics_public",
        "0",
        _flag,
        "1: GET /metrics on the admin listener answers without the admin bearer (for a Prometheus on a trusted network).",
    ),
)


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
    return {field: _url(environ[env]) if environ.get(env) else url for field, (env, url) in derived.items()}


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
