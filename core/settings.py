"""Every KLEIS_* setting: its variable, the Config field it fills, its default, how it is read and what it means.

`kleis.py --help` and the configuration table in docs/configuration.md are written from this table.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from core import setting_values as parse


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
        parse.text,
        "Directory for the SQLite store, generated secrets and caches (created with mode 0700).",
    ),
    Setting(
        "KLEIS_DATABASE_URL",
        "database_url",
        "",
        parse.database_url,
        "Store URL. Empty: SQLite at <data dir>/kleis.db. postgresql://user:pass@host/db for a store shared by several Kleis processes.",
    ),
    Setting(
        "KLEIS_SECRET_KEY",
        "secret_key",
        "",
        parse.text,
        "Fernet key(s) encrypting OAuth tokens at rest; comma-separated, the first encrypts, all decrypt (rotation). "
        "Empty: generated once into <data dir>/secret.key (0600).",
    ),
    Setting(
        "KLEIS_ADMIN_SECRET",
        "admin_secret",
        "",
        parse.text,
        "Admin password and admin API bearer. Empty: generated once into <data dir>/admin.secret (0600) and printed on first start only.",
    ),
    Setting("KLEIS_HOST", "host", "127.0.0.1", parse.host, "Proxy listen address."),
    Setting("KLEIS_PORT", "port", "8080", parse.port, "Proxy listen port (the base URL agents use)."),
    Setting(
        "KLEIS_PUBLIC_URL",
        "public_url",
        "",
        parse.optional_url,
        "Base URL clients reach Kleis at, for the URLs it hands out (/models/api.json), e.g. https://kleis.example.net "
        "behind a TLS proxy. Empty: http:// and the request's Host.",
    ),
    Setting("KLEIS_ADMIN_HOST", "admin_host", "127.0.0.1", parse.host, "Admin page listen address."),
    Setting("KLEIS_ADMIN_PORT", "admin_port", "8081", parse.port, "Admin page listen port."),
    Setting(
        "KLEIS_ADMIN_TRUSTED_PROXY",
        "admin_trusted_proxy",
        "",
        parse.text,
        "Address of a reverse proxy in front of the admin whose X-Forwarded-Proto/-For are trusted "
        "(Secure cookie, per-client login throttling).",
    ),
    Setting("KLEIS_LOG_LEVEL", "log_level", "INFO", parse.log_level, "DEBUG, INFO, WARNING or ERROR."),
    Setting(
        "KLEIS_MAX_BODY_BYTES",
        "max_body_bytes",
        str(32 * 1024 * 1024),
        parse.positive_int,
        "Largest request body accepted (bytes); larger requests get 413.",
    ),
    Setting(
        "KLEIS_UPSTREAM_TIMEOUT",
        "upstream_timeout",
        "600",
        parse.positive_float,
        "Seconds to wait for an upstream's response headers before answering 504.",
    ),
    Setting(
        "KLEIS_SHUTDOWN_GRACE",
        "shutdown_grace",
        "30",
        parse.non_negative_float,
        "Seconds a SIGTERM/SIGINT lets requests in flight (streams too) finish before the rest are ended with an error.",
    ),
    Setting(
        "KLEIS_SSE_KEEPALIVE",
        "sse_keepalive",
        "15",
        parse.non_negative_float,
        "Seconds of upstream silence in a stream after which the client gets an SSE comment (': keep-alive'); 0: never.",
    ),
    Setting(
        "KLEIS_REFRESH_SKEW", "refresh_skew", "300", parse.positive_float, "Refresh an access token this many seconds before it expires."
    ),
    Setting("KLEIS_CLAUDE_API_BASE", "claude_api_base", "https://api.anthropic.com", parse.url, "Anthropic Messages API."),
    Setting(
        "KLEIS_CLAUDE_AUTH_BASE",
        "claude_auth_base",
        "https://platform.claude.com",
        parse.url,
        "Claude OAuth host: token endpoint /v1/oauth/token, paste redirect /oauth/code/callback.",
    ),
    Setting(
        "KLEIS_CLAUDE_AUTHORIZE_URL", "claude_authorize_url", "https://claude.ai/oauth/authorize", parse.url, "Claude OAuth authorize page."
    ),
    Setting(
        "KLEIS_CLAUDE_CODE_VERSION",
        "claude_code_version",
        "2.1.328",
        parse.version,
        "Claude Code version Kleis presents for clients other than Claude Code; a newer version seen from a real Claude "
        "Code, or one Claude names as required (claude_code_version_too_old), is used instead.",
    ),
    Setting(
        "KLEIS_CLAUDE_EXTRA_BETAS",
        "claude_extra_betas",
        "",
        parse.text,
        "Comma-separated anthropic-beta values added after the required Claude OAuth betas.",
    ),
    Setting(
        "KLEIS_CODEX_API_BASE",
        "codex_api_base",
        "https://chatgpt.com/backend-api/codex",
        parse.url,
        "ChatGPT Codex backend (Responses API).",
    ),
    Setting(
        "KLEIS_CODEX_AUTH_BASE",
        "codex_auth_base",
        "https://auth.openai.com",
        parse.url,
        "ChatGPT OAuth host (authorize, token, device flow).",
    ),
    Setting(
        "KLEIS_CODEX_ORIGINATOR",
        "codex_originator",
        "codex_cli_rs",
        parse.text,
        "originator header (and login parameter) Kleis presents to the Codex backend.",
    ),
    Setting(
        "KLEIS_CODEX_CLIENT_VERSION",
        "codex_client_version",
        "0.171.0",
        parse.version,
        "Codex CLI version Kleis presents (version header and user-agent) for clients other than Codex CLI; a newer "
        "version seen from a real Codex CLI is used instead.",
    ),
    Setting(
        "KLEIS_CODEX_REMOVED_PARAMS",
        "codex_removed_params",
        "",
        parse.text,
        "Comma-separated body parameters removed before the Codex backend (empty: the built-in list; see docs/providers.md).",
    ),
    Setting("KLEIS_GITHUB_BASE", "github_base", "https://github.com", parse.url, "GitHub web host (device flow)."),
    Setting(
        "KLEIS_GITHUB_API_BASE", "github_api_base", "https://api.github.com", parse.url, "GitHub API host (Copilot token exchange, /user)."
    ),
    Setting(
        "KLEIS_COPILOT_API_BASE",
        "copilot_api_base",
        "",
        parse.optional_url,
        "Copilot API. Empty: taken from the Copilot token's endpoints.api.",
    ),
    Setting(
        "KLEIS_COPILOT_CLIENT_ID",
        "copilot_client_id",
        "Iv1.b507a08c87ecfe98",
        parse.text,
        "GitHub OAuth client id for the Copilot device flow.",
    ),
    Setting(
        "KLEIS_GITHUB_DOMAIN",
        "github_domain",
        "",
        parse.text,
        "GitHub Enterprise (ghe.com) domain; replaces github.com, api.github.com and the Copilot API host.",
    ),
    Setting(
        "KLEIS_COPILOT_EDITOR_VERSION",
        "copilot_editor_version",
        "vscode/1.126.0",
        parse.text,
        "Editor-Version header sent to Copilot (VS Code profile; Copilot answers 466 to editor profiles it retired).",
    ),
    Setting(
        "KLEIS_COPILOT_PLUGIN_VERSION",
        "copilot_plugin_version",
        "copilot-chat/0.54.0",
        parse.text,
        "Editor-Plugin-Version header sent to Copilot (its version also forms the User-Agent).",
    ),
    Setting(
        "KLEIS_COPILOT_API_VERSION",
        "copilot_api_version",
        "2026-08-01",
        parse.text,
        "X-GitHub-Api-Version sent on Copilot API calls (the version current VS Code sends; newer endpoints refuse older ones).",
    ),
    Setting(
        "KLEIS_COPILOT_DIRECT_USER_AGENT",
        "copilot_direct_user_agent",
        "opencode/1.18.33",
        parse.text,
        "User-Agent for direct-mode Copilot accounts (a token the exchange refuses, e.g. OpenCode's own app): that app's "
        "profile, without VS Code's editor headers.",
    ),
    Setting(
        "KLEIS_MODELS_DEV_URL",
        "models_dev_url",
        "https://models.dev/api.json",
        parse.url,
        "models.dev registry merged into /models/api.json.",
    ),
    Setting(
        "KLEIS_MODELS_TTL", "models_ttl", "3600", parse.positive_float, "Seconds the models.dev copy is kept before it is fetched again."
    ),
    Setting("KLEIS_CUSTOM_MODELS", "custom_models", "", parse.text, "Path of a JSON file with extra models for the kleis registry entry."),
    Setting(
        "KLEIS_COOLDOWN_MAX",
        "cooldown_max",
        "21600",
        parse.positive_float,
        "Longest cooldown (seconds) a provider's rate-limit reset can impose on an account.",
    ),
    Setting(
        "KLEIS_ROUTING",
        "routing",
        "primary",
        parse.routing,
        "primary: the primary account serves until it is saving or cooling; headroom: new conversations go to the account "
        "with the most subscription quota left.",
    ),
    Setting(
        "KLEIS_QUOTA_THRESHOLD",
        "quota_threshold",
        "0.95",
        parse.fraction,
        "An account whose quota window is used this much (0–1), or refused, is saving: new conversations go elsewhere first.",
    ),
    Setting(
        "KLEIS_SESSION_TTL",
        "session_ttl",
        "3600",
        parse.positive_float,
        "Seconds a conversation keeps its account after its last request (session affinity).",
    ),
    Setting(
        "KLEIS_ACCOUNT_MAX_INFLIGHT",
        "account_max_inflight",
        "0",
        parse.count,
        "Requests in flight per account; past it a request goes to another account or waits (0: no cap).",
    ),
    Setting(
        "KLEIS_ACCOUNT_WAIT",
        "account_wait",
        "10",
        parse.positive_float,
        "Seconds a request waits for an account below KLEIS_ACCOUNT_MAX_INFLIGHT before it is refused with 503.",
    ),
    Setting(
        "KLEIS_USAGE_RETENTION_DAYS", "usage_retention_days", "90", parse.positive_int, "Usage events older than this are deleted daily."
    ),
    Setting(
        "KLEIS_TIMEZONE",
        "timezone",
        "UTC",
        parse.timezone,
        "Time zone of the calendar budget windows (day, week from Monday, month) and of the admin's usage days and charts. "
        "Every process on one store must use the same.",
    ),
    Setting(
        "KLEIS_MODEL_MAP",
        "model_map",
        "",
        parse.model_map,
        "Models served in place of others: pattern=model pairs, comma-separated, the first match wins "
        "(e.g. claude-haiku-*=gpt-5.4-mini,claude-*=gpt-5.4 points Claude Code's models at a ChatGPT plan).",
    ),
    Setting(
        "KLEIS_TRANSLATION",
        "translation",
        "1",
        parse.flag,
        "1: a request for a model no provider serves on the client's protocol is translated for one that serves it "
        "(Messages clients on Codex models, Responses clients on Claude models, Chat clients on both); 0: such requests get 404.",
    ),
    Setting(
        "KLEIS_METRICS_PUBLIC",
        "metrics_public",
        "0",
        parse.flag,
        "1: GET /metrics on the admin listener answers without the admin bearer (for a Prometheus on a trusted network).",
    ),
)
