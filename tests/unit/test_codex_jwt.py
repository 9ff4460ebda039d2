"""ChatGPT account ids from JWTs: base64url with padding restored, and every fallback in order."""

from __future__ import annotations

import base64
import json

import pytest

from providers.codex.jwt import account_id_from_claims, account_id_from_tokens, decode_claims, identity_from_tokens
from tests.fakes.codex_auth import AUTH_CLAIM, PROFILE_CLAIM, ChatGPTAccount, make_jwt


def jwt_with_payload(payload: bytes, *, padded: bool = False, standard_alphabet: bool = False) -> str:
    encoded = base64.b64encode(payload) if standard_alphabet else base64.urlsafe_b64encode(payload)
    text = encoded.decode() if padded else encoded.decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{text}.c2ln"


@pytest.mark.parametrize("length", range(4))  # every padding remainder
def test_payloads_of_every_length_decode_without_padding(length: int) -> None:
    claims = {"chatgpt_account_id": "acc", "x": "y" * length}
    assert decode_claims(jwt_with_payload(json.dumps(claims).encode())) == claims
    assert decode_claims(jwt_with_payload(json.dumps(claims).encode(), padded=True)) == claims


def test_url_safe_characters_decode_and_the_standard_alphabet_too() -> None:
    # "??>" encodes to "Pz8-" in base64url and "Pz8+" in standard base64: both must decode.
    claims = {"chatgpt_account_id": "acc-1", "note": "??>??>~~~"}
    raw = json.dumps(claims).encode()
    assert b"-" in base64.urlsafe_b64encode(raw) or b"_" in base64.urlsafe_b64encode(raw)
    assert decode_claims(jwt_with_payload(raw)) == claims
    assert decode_claims(jwt_with_payload(raw, standard_alphabet=True)) == claims


@pytest.mark.parametrize("token", [None, "", "not-a-jwt", "a.b", "a..c", "a.!!!!.c", "a.bm90IGpzb24.c", "a.WzEsMl0.c"])
def test_anything_else_is_no_claims(token: str | None) -> None:
    assert decode_claims(token) == {}  # WzEsMl0 is "[1,2]": JSON, but not an object


def test_the_nested_claim_comes_first() -> None:
    claims = {AUTH_CLAIM: {"chatgpt_account_id": "nested"}, "chatgpt_account_id": "top", "organizations": [{"id": "org"}]}
    assert account_id_from_claims(claims) == "nested"


def test_then_the_top_level_claim() -> None:
    claims = {AUTH_CLAIM: {"chatgpt_plan_type": "plus"}, "chatgpt_account_id": "top", "organizations": [{"id": "org"}]}
    assert account_id_from_claims(claims) == "top"


def test_then_the_first_organization_top_level_or_nested() -> None:
    assert account_id_from_claims({"organizations": [{"id": "org-a"}, {"id": "org-b"}]}) == "org-a"
    assert account_id_from_claims({AUTH_CLAIM: {"organizations": [{"id": "org-n"}]}}) == "org-n"
    assert account_id_from_claims({"organizations": []}) is None
    assert account_id_from_claims({AUTH_CLAIM: {"chatgpt_account_id": "  "}}) is None  # blank is absent


def test_id_token_first_then_access_token() -> None:
    id_token = make_jwt({AUTH_CLAIM: {"chatgpt_account_id": "from-id"}})
    access = make_jwt({AUTH_CLAIM: {"chatgpt_account_id": "from-access"}})
    assert account_id_from_tokens(id_token, access) == "from-id"
    assert account_id_from_tokens(make_jwt({"email": "x@y"}), access) == "from-access"
    assert account_id_from_tokens(None, access) == "from-access"
    assert account_id_from_tokens("garbage", "garbage") is None


def test_identity_reads_email_plan_user_and_expiry() -> None:
    account = ChatGPTAccount("acc-9", "user-9", "nine@example.test", "pro")
    identity = identity_from_tokens(account.id_token(), account.access_token("j", 600))
    assert (identity.account_id, identity.user_id, identity.email, identity.plan_type) == ("acc-9", "user-9", "nine@example.test", "pro")
    assert identity.key == "acc-9:user-9"
    assert identity.access_expires_at is not None
    assert identity.metadata() == {"account_id": "acc-9", "user_id": "user-9", "email": "nine@example.test", "plan_type": "pro"}
    # Only an access token: the email comes from its profile claim.
    only_access = identity_from_tokens(
        None, make_jwt({PROFILE_CLAIM: {"email": "p@example.test"}, AUTH_CLAIM: {"chatgpt_account_id": "a"}})
    )
    assert (only_access.email, only_access.key) == ("p@example.test", "a")
    # A file's own account_id is the last resort.
    assert identity_from_tokens(None, "opaque-token", "acc-file").account_id == "acc-file"
