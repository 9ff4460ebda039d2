"""Claude OAuth and Claude Code wire constants (sources: shared/research/providers.md §1)."""

from __future__ import annotations

CLIENT_ID = "9d1c250a-e61b-44d9-88ed-5944d1962f5e"
SCOPES = "org:create_api_key user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload"
TOKEN_PATH = "/v1/oauth/token"
CALLBACK_PATH = "/oauth/code/callback"
PROFILE_PATH = "/api/oauth/profile"
# Claude Code calls its OAuth endpoints with axios; a versioned claude-code UA drew 429s on refresh (§1.3).
TOKEN_USER_AGENT = "axios/1.13.6"

ANTHROPIC_VERSION = "2023-06-01"
OAUTH_BETA = "oauth-2025-04-20"
REQUIRED_BETAS = ("claude-code-20250219", OAUTH_BETA, "interleaved-thinking-2025-05-14")

CLAUDE_CODE_UA_PREFIX = "claude-cli/"
IDENTITY_CLI = "You are Claude Code, Anthropic's official CLI for Claude."
IDENTITY_AGENT_SDK = "You are a Claude agent, built on Anthropic's Claude Agent SDK."
IDENTITIES = (IDENTITY_CLI, IDENTITY_AGENT_SDK)
BILLING_HEADER_PREFIX = "x-anthropic-billing-header:"

# Claude Code's own tool names (cchistory prompts 2.1.11, as PI uses them).
CLAUDE_CODE_TOOLS = (
    "Read", "Write", "Edit", "Bash", "Grep", "Glob", "AskUserQuestion", "EnterPlanMode", "ExitPlanMode",
    "KillShell", "NotebookEdit", "Skill", "Task", "TaskOutput", "TodoWrite", "WebFetch", "WebSearch",
)
MCP_PREFIX = "mcp_"
MAX_TOOL_NAME = 64

TERMS_WARNING = (
    "Anthropic's terms restrict using Claude Free/Pro/Max subscription credentials through third-party tools; "
    "Anthropic has said third parties may not route requests through them on behalf of users. Routing a Claude "
    "subscription through Kleis can breach those terms and may get the account limited or banned. "
    "You use it at your own risk."
)
