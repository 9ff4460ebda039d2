"""Errors a Codex stream carries inside a 200: recorded in usage, cooling the account, failing over when possible.
Here the parts that need no socket; through listeners: tests/e2e/test_codex_health.py."""

from __future__ import annotations

import pytest

from providers.codex import CodexProvider


def test_the_removed_parameters_are_configurable(config) -> None:
    provider = CodexProvider(config.replace(codex_removed_params="temperature, metadata"))
    assert provider.body_rules.removed == frozenset({"temperature", "metadata"})
    assert "max_output_tokens" in CodexProvider(config).body_rules.removed


@pytest.mark.parametrize(
    ("detail", "kind"),
    [
        ("The 'gpt-6-sol' model requires a newer version of Codex. Please upgrade to the latest app or CLI and try again.", "version"),
        ("The 'gpt-6-sol' model is not supported when using Codex with a ChatGPT account.", "request"),
    ],
)
def test_refusals_about_the_client_or_the_model_never_cool_the_account(detail: str, kind: str) -> None:
    from providers.codex.errors import classify

    signal = classify(400, {}, {"detail": detail})
    assert (signal.kind, signal.account_wide) == (kind, False)
