"""The keys page: list, create (the key is shown once, with a copy button) and revoke with confirmation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from admin import confirm
from core.display import key_label
from core.exceptions import InvalidInput, NotFound
from store.keys import PROVIDERS, create_key, find_key, key_to_dict, limits_text, revoke_key, set_limits
from store.models import ApiKey

bp = Blueprint("keys", __name__, url_prefix="/admin")

NAME_MAX = 200


def list_keys() -> list[dict[str, Any]]:
    return [{**key_to_dict(row), "limits": limits_text(key_to_dict(row))} for row in ApiKey.select().order_by(ApiKey.id.desc())]


def parse_expiry(value: Any) -> float | None:
    """Days until the key expires: a positive number, or empty / None for never."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidInput("expires_days: expected a number of days")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"expires_days: expected a number of days, got {value!r}") from None


LIMIT_FIELDS = ("rate_limit", "concurrency_limit")


def parse_limit(value: Any, field: str) -> int | None:
    """A whole number; empty, None or 0 for no limit."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{field}: expected a whole number (0 or empty: no limit)")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise InvalidInput(f"{field}: expected a whole number (0 or empty: no limit), got {value!r}") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise InvalidInput(f"{field}: expected a whole number (0 or empty: no limit), got {value!r}")
    if value < 0:
        raise InvalidInput(f"{field}: must be 0 (no limit) or more")
    return value


def limits_from(data: dict[str, Any], *, partial: bool) -> dict[str, int | None]:
    """The limit fields present in `data` (all of them, absent ones as no limit, unless `partial`)."""
    return {field: parse_limit(data.get(field), field) for field in LIMIT_FIELDS if not partial or field in data}


def create_from(data: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Create a key from form or JSON fields; returns its listing and the key itself (this once)."""
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("missing field: name (what the key is for)")
    if len(name.strip()) > NAME_MAX:
        raise InvalidInput(f"name: at most {NAME_MAX} characters")
    for field in ("providers", "models"):
        value = data.get(field)
        if value is not None and not isinstance(value, str) and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise InvalidInput(f"{field}: expected a list of strings or a comma-separated string")
    row, key = create_key(
        name,
        providers=data.get("providers") or None,
        models=data.get("models") or None,
        expires_days=parse_expiry(data.get("expires_days")),
        **limits_from(data, partial=False),
    )
    return key_to_dict(row), key


def limit_from(ident: str, data: dict[str, Any]) -> dict[str, Any]:
    changes = limits_from(data, partial=True)
    if not changes:
        raise InvalidInput("give rate_limit and/or concurrency_limit (a whole number; 0 or null removes the limit)")
    return key_to_dict(set_limits(ident, **changes))


@bp.get("/keys")
def page() -> str:
    return render_template("keys.html", keys=list_keys(), providers=PROVIDERS, form={})


@bp.post("/keys")
def create() -> str | tuple[str, int]:
    form = {
        "name": request.form.get("name", ""),
        "providers": request.form.getlist("providers"),
        "models": request.form.get("models", ""),
        "expires_days": request.form.get("expires_days", ""),
        "rate_limit": request.form.get("rate_limit", ""),
        "concurrency_limit": request.form.get("concurrency_limit", ""),
    }
    try:
        created, key = create_from(form)
    except InvalidInput as exc:
        return render_template("keys.html", keys=list_keys(), providers=PROVIDERS, form=form, error=str(exc)), 400
    # Rendered in this response only (never stored, never put in the session): it cannot be shown again.
    return render_template("key_created.html", created=created, key=key)


@bp.get("/keys/<ident>/revoke")
def confirm_revoke(ident: str) -> str | tuple[str, int]:
    try:
        key = key_to_dict(find_key(ident))
    except NotFound as exc:
        return render_template("message.html", title="No such key", message=str(exc)), 404
    return confirm.page(
        confirm.Confirmation(
            title="Revoke key",
            question="Revoke this key?",
            subject=key["name"],
            detail=f"{key['public_id']}…",
            consequence="Every agent using it is refused within a second. This cannot be undone (the row stays for the record).",
            action_url=url_for(".revoke", ident=key["id"]),
            button="Revoke the key",
            button_id="confirm-revoke",
            cancel_url=url_for(".page"),
        )
    )


@bp.post("/keys/<ident>/limits")
def limits(ident: str) -> Response | tuple[str, int]:
    try:
        changed = limit_from(ident, {field: request.form.get(field, "") for field in LIMIT_FIELDS})
    except NotFound as exc:
        flash(str(exc), "error")
        return redirect(url_for("keys.page"), code=303)
    except InvalidInput as exc:
        return render_template("keys.html", keys=list_keys(), providers=PROVIDERS, form={}, error=str(exc)), 400
    flash(f"Limits of {changed['name']!r}: {limits_text(changed)}.", "ok")
    return redirect(url_for("keys.page"), code=303)


@bp.post("/keys/<ident>/revoke")
def revoke(ident: str) -> Response:
    def revoke_now() -> str:
        row = revoke_key(ident)
        return f"Key {key_label(row.name, row.public_id)} revoked: the proxy refuses it from now on."

    return confirm.confirmed(
        revoke_now,
        unconfirmed="Revoking a key needs its confirmation page.",
        page_endpoint=".confirm_revoke",
        ident=ident,
        done_endpoint=".page",
    )
