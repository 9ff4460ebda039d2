"""The keys page: list, create (the key is shown once, with a copy button) and revoke with confirmation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from admin import confirm
from core.display import key_label
from core.exceptions import InvalidInput, NotFound
from core.windows import WINDOWS
from store.keys import PROVIDERS, budget_text, create_key, find_key, key_to_dict, limits_text, revoke_key, set_limits
from store.models import ApiKey

bp = Blueprint("keys", __name__, url_prefix="/admin")

NAME_MAX = 200


def list_keys() -> list[dict[str, Any]]:
    listed = []
    for row in ApiKey.select().order_by(ApiKey.id.desc()):
        key = key_to_dict(row)
        listed.append({**key, "limits": limits_text(key), "budget": budget_text(key)})
    return listed


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


LIMIT_FIELDS = ("rate_limit", "concurrency_limit", "token_budget", "cost_budget", "budget_window")


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


def parse_amount(value: Any, field: str) -> float | None:
    """US dollars (`12.5`, `"12.50"`, `"$12.50"`); empty, None or 0 for no budget."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{field}: expected an amount of US dollars (0 or empty: no budget)")
    if isinstance(value, str):
        try:
            value = float(value.strip().removeprefix("$").replace(",", ""))
        except ValueError:
            raise InvalidInput(f"{field}: expected an amount of US dollars (0 or empty: no budget), got {value!r}") from None
    if not isinstance(value, (int, float)):
        raise InvalidInput(f"{field}: expected an amount of US dollars (0 or empty: no budget), got {value!r}")
    if value < 0:
        raise InvalidInput(f"{field}: must be 0 (no budget) or more")
    return float(value)


def parse_window(value: Any, field: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: expected one of {', '.join(WINDOWS)}")
    return value.strip()


PARSERS: dict[str, Callable[[Any, str], Any]] = {"cost_budget": parse_amount, "budget_window": parse_window}


def limits_from(data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """The limit and budget fields present in `data` (all of them, absent ones as none, unless `partial`)."""
    fields = [field for field in LIMIT_FIELDS if not partial or field in data]
    parsed: dict[str, Any] = {}
    for field in fields:
        parse: Callable[[Any, str], Any] = PARSERS[field] if field in PARSERS else parse_limit
        parsed[field] = parse(data.get(field), field)
    return parsed


def parse_translation(value: Any) -> bool:
    """`translation`: true (default) or false — JSON booleans, or a form's "1"/"0"/"on"/"off"."""
    if value is None or value == "" or value is True or value in ("1", "on", "true"):
        return True
    if value is False or value in ("0", "off", "false"):
        return False
    raise InvalidInput(f"translation: expected true or false, got {value!r}")


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
        translation=parse_translation(data.get("translation")),
        **limits_from(data, partial=False),
    )
    return key_to_dict(row), key


def limit_from(ident: str, data: dict[str, Any]) -> dict[str, Any]:
    changes = limits_from(data, partial=True)
    if "budget_window" in changes and changes["budget_window"] is None:
        del changes["budget_window"]  # an empty window field keeps the key's window
    if not changes:
        raise InvalidInput(
            "give rate_limit, concurrency_limit, token_budget, cost_budget and/or budget_window (0 or null removes a limit or budget)"
        )
    return key_to_dict(set_limits(ident, **changes))


@bp.get("/keys")
def page() -> str:
    return render_template("keys.html", keys=list_keys(), providers=PROVIDERS, windows=WINDOWS, form={})


@bp.post("/keys")
def create() -> str | tuple[str, int]:
    form = {
        "name": request.form.get("name", ""),
        "providers": request.form.getlist("providers"),
        "models": request.form.get("models", ""),
        "expires_days": request.form.get("expires_days", ""),
        **{field: request.form.get(field, "") for field in LIMIT_FIELDS},
    }
    try:
        created, key = create_from(form)
    except InvalidInput as exc:
        return render_template("keys.html", keys=list_keys(), providers=PROVIDERS, windows=WINDOWS, form=form, error=str(exc)), 400
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
        # the fields the form sent (an empty one clears that limit); a field it does not carry stays as it is
        changed = limit_from(ident, {field: request.form[field] for field in LIMIT_FIELDS if field in request.form})
    except NotFound as exc:
        flash(str(exc), "error")
        return redirect(url_for("keys.page"), code=303)
    except InvalidInput as exc:
        return render_template("keys.html", keys=list_keys(), providers=PROVIDERS, windows=WINDOWS, form={}, error=str(exc)), 400
    flash(f"Limits of {changed['name']!r}: {limits_text(changed)}; budget: {budget_text(changed)}.", "ok")
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
