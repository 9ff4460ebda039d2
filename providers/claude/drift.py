"""Kleis's words for Claude's drift refusals: the Claude Code version a request carried, and the extra-usage lanes.

Claude refuses a model to an old Claude Code version, and bills third-party traffic and long context to extra usage,
which an account may not have; these say to the client and the operator what happened and what helps.
"""

from __future__ import annotations

from providers.claude.response import LONG_CONTEXT_LABEL, OUT_OF_EXTRA_LABEL, THIRD_PARTY_LABEL
from providers.claude.rewrite import ClaudeState
from providers.drift import Drift

SETTING = "KLEIS_CLAUDE_CODE_VERSION"
USAGE_PAGE = "claude.ai/settings/usage"


def version_drift(state: ClaudeState, required: str | None, adopted: bool) -> Drift:
    """claude_code_version_too_old: adopted (one more attempt), Claude Code's own version (update it), or a setting."""
    if state.own_user_agent:
        return Drift(
            f"claude-version:own:{state.version}:{required}",
            "",
            f"Kleis forwarded the client's own Claude Code version ({state.version or 'unknown'}): update Claude Code "
            f"(`claude update`){f' to {required} or newer' if required else ''}.",
        )
    if adopted:
        return Drift(
            f"claude-version:adopted:{required}",
            SETTING,
            f"Claude requires Claude Code {required} or newer for this model; Kleis presented {state.version} and now "
            f"presents {required} (adopted and stored; `kleis.py doctor` shows it).",
            retry=True,
        )
    needs = f"requires Claude Code {required} or newer" if required else "requires a newer Claude Code"
    return Drift(
        f"claude-version:{state.version}:{required}",
        SETTING,
        f"Kleis presented Claude Code {state.version}; Claude {needs} for this model: raise {SETTING} to a current Claude Code release.",
    )


def billing_drift(label: str, state: ClaudeState) -> Drift | None:
    """The billing-lane refusals: Kleis does not disguise third-party traffic; it says where Claude bills it."""
    if label.startswith(THIRD_PARTY_LABEL):
        return Drift(
            f"claude-third-party-extra-usage:{state.account_id}",
            "",
            "Kleis: Claude bills this account's traffic from clients other than Claude Code to its extra usage, not the plan's "
            f"limits; turn extra usage on or add to it at {USAGE_PAGE}, or use Claude Code itself. Kleis presents other clients "
            "as Claude Code but does not forge Claude Code's billing attestation.",
        )
    if label.startswith(OUT_OF_EXTRA_LABEL):
        return Drift(
            f"claude-out-of-extra-usage:{state.account_id}",
            "",
            f"Kleis: this account's extra usage, which Claude bills third-party traffic to, is used up; add more at {USAGE_PAGE}.",
        )
    if label.startswith(LONG_CONTEXT_LABEL):
        return Drift(
            f"claude-long-context-extra-usage:{state.account_id}",
            "",
            f"Kleis: Claude bills long-context requests on this account to extra usage; turn it on at {USAGE_PAGE}, or keep the "
            "request within the standard context window (without the context-1m beta). The account stays in use.",
        )
    return None
