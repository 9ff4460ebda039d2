"""Shared OAuth helpers: PKCE, pasted answers, login state in the store, OAuth error mapping."""

from __future__ import annotations

import base64
import hashlib
import time

import httpx
import pytest

from core.exceptions import InvalidInput, ProviderError, ReauthRequired, TransientProviderError
from providers import oauth
from store.models import OAuthState


def test_pkce_pair_is_s256() -> None:
    verifier, challenge = oauth.pkce_pair()
    assert 43 <= len(verifier) <= 128 and "=" not in verifier + challenge
    assert challenge == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert oauth.pkce_pair()[0] != verifier


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("abc123#st4te", ("abc123", "st4te")),
        ("https://platform.claude.com/oauth/code/callback?code=abc123&state=st4te", ("abc123", "st4te")),
        ("http://localhost:1455/auth/callback?code=ac_1.2-3&scope=openid&state=s", ("ac_1.2-3", "s")),
        ("code=abc&state=xyz", ("abc", "xyz")),
        ("?code=abc&state=xyz", ("abc", "xyz")),
        ("  baredcode  ", ("baredcode", None)),
    ],
)
def test_pasted_answers(answer: str, expected: tuple) -> None:
    assert oauth.parse_pasted(answer) == expected


@pytest.mark.parametrize("answer", ["", "#state", "code#", "https://x/cb?error=access_denied", "state=only"])
def test_bad_pasted_answers(answer: str) -> None:
    with pytest.raises(InvalidInput):
        oauth.parse_pasted(answer)


def test_state_round_trip_is_encrypted_and_expires(store) -> None:
    state = oauth.new_state()
    oauth.save_state(store, "claude", state, "verifier-secret", {"redirect_uri": "https://x/cb"})
    row = OAuthState.get(OAuthState.state == state)
    assert "verifier-secret" not in row.verifier and "redirect_uri" not in row.flow_data
    assert oauth.load_state(store, "claude", state) == ("verifier-secret", {"redirect_uri": "https://x/cb"})
    with pytest.raises(InvalidInput, match="unknown"):
        oauth.load_state(store, "codex", state)  # another provider's login
    with pytest.raises(InvalidInput, match="unknown"):
        oauth.load_state(store, "claude", "forged")
    OAuthState.update(expires_at=time.time() - 1).where(OAuthState.state == state).execute()
    with pytest.raises(InvalidInput, match="expired"):
        oauth.load_state(store, "claude", state)
    with pytest.raises(InvalidInput, match="does not match"):
        oauth.check_state("issued", "other")


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (400, {"error": "invalid_grant", "error_description": "refresh token already used"}, ReauthRequired),
        (401, {"error": {"message": "Your refresh token was already used", "type": "invalid_request_error"}}, ReauthRequired),
        (503, {"error": "temporarily_unavailable"}, TransientProviderError),
        (429, {}, TransientProviderError),
        (400, {"error": "invalid_request", "error_description": "bad redirect"}, ProviderError),
        # OpenAI's real answer to a reused refresh token (its wording has "already been used")
        (
            401,
            {
                "error": {
                    "message": "Your refresh token has already been used to generate a new access token. Please try signing in again.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "refresh_token_reused",
                }
            },
            ReauthRequired,
        ),
        (401, {"error": {"message": "token invalidated", "code": "refresh_token_invalidated"}}, ReauthRequired),
    ],
)
def test_token_errors_map_to_what_they_mean(status: int, body: dict, kind: type) -> None:
    error = oauth.token_error(httpx.Response(status, json=body), "refresh")
    assert type(error) is kind


def test_provider_error_text_is_redacted_at_the_source() -> None:
    error = oauth.token_error(
        httpx.Response(400, json={"error": "invalid_request", "error_description": "bad token sk-ant-ort01-LEAKEDLEAKED123"}), "refresh"
    )
    assert "LEAKED" not in str(error) and "redacted" in str(error)


def test_health_changes_never_undo_an_operator_disable(store) -> None:
    from store.accounts import TokenSet, set_status, upsert_account
    from store.models import Account

    row, _ = upsert_account("claude", "u", TokenSet("a", "r", None), store.cipher)
    set_status(row.id, "disabled", "by the operator", kind="admin")
    set_status(row.id, "cooling", "rate limited", cooldown_until=time.time() + 60, kind="health")
    assert Account.get_by_id(row.id).status == "disabled"


def test_a_state_never_starts_with_a_dash(monkeypatch) -> None:
    """It is also the flow id typed after `--poll`: argparse would read `-…` as an option (a flaky CI run did)."""
    import secrets

    draws = iter([b"\xf8" + b"\x00" * 31, b"\x00" * 32])  # the first encodes to "-A…", the second to "AAA…"
    monkeypatch.setattr(secrets, "token_bytes", lambda n: next(draws))
    state = oauth.new_state()
    assert state == "A" * 43 and len(state) == 43
