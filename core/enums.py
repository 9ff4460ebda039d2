"""The closed vocabularies Kleis stores and compares: account status, provider name, health signal kind.

String enums: a member equals its plain string (`AccountStatus.ACTIVE == "active"`), so rows written before
these enums, JSON answers and CLI output read the same.
"""

from __future__ import annotations

import enum


class AccountStatus(enum.StrEnum):
    ACTIVE = "active"
    COOLING = "cooling"  # rate limited or failing: not used until `cooldown_until`, then tested again
    NEEDS_REAUTH = "needs_reauth"  # the refresh credential is dead: someone must log in again
    DISABLED = "disabled"  # turned off by the operator


class ProviderName(enum.StrEnum):
    CLAUDE = "claude"
    CODEX = "codex"
    COPILOT = "copilot"


class SignalKind(enum.StrEnum):
    """What an upstream's answer says about the account that served it (providers.base.Signal)."""

    OK = "ok"
    AUTH = "auth"  # the access token was refused: refresh it and retry
    AUTH_REJECTED = "auth_rejected"  # a token issued to replace a refused one is refused too: the account is refused
    RATE_LIMIT = "rate_limit"
    OVERLOADED = "overloaded"
    SERVER = "server"
    REQUEST = "request"  # this request's problem; the account is fine
    VERSION = "version"  # the client version Kleis presents is too old for this model
