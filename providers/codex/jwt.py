"""ChatGPT token claims: JWT payload decoding (base64url, padding restored) and the account a token pair names."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from collections.abc import Callable
from typing import Any

from core.jsonshape import present_fields
from providers.codex.constants import AUTH_CLAIM, PROFILE_CLAIM


def decode_claims(token: str | None) -> dict[str, Any]:
    """The payload of a JWT as a dict; {} for anything that is not one.

    The signature is not checked: Kleis receives these tokens from the issuer over TLS (or from a file the
    operator imports) and reads them only to learn which account they belong to.
    """
    if not isinstance(token, str) or token.count(".") < 2:
        return {}
    segment = token.split(".")[1].strip()
    if not segment:
        return {}
    padded = segment + "=" * (-len(segment) % 4)
    try:
        # urlsafe_b64decode maps -_ to +/ first, so the standard alphabet decodes too.
        raw = base64.urlsafe_b64decode(padded.encode("ascii"))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeError):
        return {}
    return payload if isinstance(payload, dict) else {}


def _auth(claims: dict[str, Any]) -> dict[str, Any]:
    auth = claims.get(AUTH_CLAIM)
    return auth if isinstance(auth, dict) else {}


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _first_organization(claims: dict[str, Any]) -> str | None:
    for holder in (claims, _auth(claims)):
        organizations = holder.get("organizations")
        if isinstance(organizations, list) and organizations and isinstance(organizations[0], dict):
            found = _text(organizations[0].get("id"))
            if found:
                return found
    return None


def _email(claims: dict[str, Any]) -> str | None:
    profile = claims.get(PROFILE_CLAIM)
    return _text(claims.get("email")) or (_text(profile.get("email")) if isinstance(profile, dict) else None)


def account_id_from_claims(claims: dict[str, Any]) -> str | None:
    """`https://api.openai.com/auth`.chatgpt_account_id, else top-level chatgpt_account_id, else organizations[0].id."""
    return _text(_auth(claims).get("chatgpt_account_id")) or _text(claims.get("chatgpt_account_id")) or _first_organization(claims)


def account_id_from_tokens(id_token: str | None, access_token: str | None) -> str | None:
    """The ChatGPT account id: from the id token first, else from the access token."""
    return account_id_from_claims(decode_claims(id_token)) or account_id_from_claims(decode_claims(access_token))


@dataclasses.dataclass(frozen=True)
class CodexIdentity:
    """Who a ChatGPT token pair belongs to. Nothing here is secret."""

    account_id: str | None
    user_id: str | None = None
    email: str | None = None
    plan_type: str | None = None
    residency: str | None = None
    access_expires_at: float | None = None  # the access token's exp claim

    @property
    def key(self) -> str:
        """The store identity. Members of one ChatGPT workspace share its account id, so the user id joins it."""
        if not self.account_id:
            return ""
        return f"{self.account_id}:{self.user_id}" if self.user_id else self.account_id

    def metadata(self) -> dict[str, Any]:
        return present_fields(self, ("account_id", "user_id", "email", "plan_type", "residency"))


def identity_from_tokens(id_token: str | None, access_token: str | None, account_id: str | None = None) -> CodexIdentity:
    """Read each fact from the id token first, then the access token; `account_id` (a file's own field) last."""
    tokens = [decode_claims(id_token), decode_claims(access_token)]

    def first(read: Callable[[dict[str, Any]], Any]) -> str | None:
        for claims in tokens:
            value = read(claims)
            if value:
                return str(value)
        return None

    access_claims = tokens[1]
    exp = access_claims.get("exp")
    return CodexIdentity(
        account_id=first(account_id_from_claims) or _text(account_id),
        user_id=first(lambda c: _text(_auth(c).get("chatgpt_user_id")) or _text(_auth(c).get("user_id"))),
        email=first(_email),
        plan_type=first(lambda c: _text(_auth(c).get("chatgpt_plan_type"))),
        residency=first(lambda c: _text(_auth(c).get("chatgpt_compute_residency"))),
        access_expires_at=float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None,
    )
