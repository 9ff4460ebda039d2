"""ChatGPT (Codex) OAuth and backend constants, with where each comes from (openai/codex codex-rs/login, pi-mono, OpenCode,
CLIProxyAPI)."""

from __future__ import annotations

from core.enums import ProviderName

PROVIDER = ProviderName.CODEX

# OAuth client of the Codex CLI (PI, CPA, OpenCode and openai/codex all use it).
CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
# PI, OpenCode and CPA ask for these; the newest Codex CLI adds api.connectors.* scopes Kleis does not need.
SCOPE = "openid profile email offline_access"
# The browser flow's redirect is fixed by the client registration: the page does not load unless Codex CLI
# (or Kleis's optional listener) is on that port, and the user copies its address instead.
REDIRECT_URI = "http://localhost:1455/auth/callback"
CALLBACK_PORT = 1455
CALLBACK_PATH = "/auth/callback"

AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
DEVICE_USERCODE_PATH = "/api/accounts/deviceauth/usercode"
DEVICE_TOKEN_PATH = "/api/accounts/deviceauth/token"
DEVICE_VERIFY_PATH = "/codex/device"
DEVICE_REDIRECT_PATH = "/deviceauth/callback"
DEVICE_DEFAULT_INTERVAL = 5.0
DEVICE_MIN_INTERVAL = 1.0

# Claim namespaces in ChatGPT id and access tokens.
AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"

# When the token endpoint omits expires_in and the access token carries no exp (OpenCode assumes one hour).
DEFAULT_EXPIRES_IN = 3600.0

RESPONSES_PATH = "/responses"
RESIDENCY_HEADER = "x-openai-internal-codex-residency"

TERMS_WARNING = (
    "Kleis uses this ChatGPT subscription through the Codex backend and presents itself as Codex CLI. "
    "OpenAI's terms for the subscription apply: use it for your own work and do not share the account, "
    "or a Kleis key that reaches it, with other people."
)
