"""The accounts page: each provider's accounts with their state and why, and the actions on them."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from admin import confirm, operations
from core.exceptions import KleisError, NotFound

bp = Blueprint("accounts", __name__, url_prefix="/admin")

ACTION_LABELS = {
    "primary": "Make primary",
    "refresh": "Refresh now",
    "reset": "Reset",
    "disable": "Disable",
    "enable": "Enable",
}


@bp.get("/accounts")
def page() -> str:
    accounts = operations.list_accounts()
    for account in accounts:
        account["events"] = operations.account_events(account["id"], 5)
    providers = operations.all_providers()
    known = {p.name for p in providers}
    extra = sorted({a["provider"] for a in accounts} - known)  # accounts of providers neither known nor built in
    groups = [(p, [a for a in accounts if a["provider"] == p.name]) for p in providers]
    groups += [(operations.ProviderInfo(name, name, False), [a for a in accounts if a["provider"] == name]) for name in extra]
    return render_template("accounts.html", groups=groups, labels=ACTION_LABELS)


@bp.post("/accounts/<ident>/<action>")
def act(ident: str, action: str) -> Response:
    if action not in ACTION_LABELS:
        flash(f"Unknown action {action!r}.", "error")
        return redirect(url_for(".page"), code=303)
    try:
        flash(operations.act(current_app.extensions["kleis_store"], ident, action), "ok")
    except KleisError as exc:
        flash(str(exc), "error")
    return redirect(url_for(".page") + (f"#account-{ident}" if ident.isdigit() else ""), code=303)


@bp.get("/accounts/<ident>/remove")
def confirm_remove(ident: str) -> str | tuple[str, int]:
    try:
        account = operations.describe(operations.find(ident))
    except NotFound as exc:
        return render_template("message.html", title="No such account", message=str(exc)), 404
    detail = f"{account['provider']}, #{account['id']}" + (", primary" if account["is_primary"] else "")
    return confirm.page(
        confirm.Confirmation(
            title="Remove account",
            question="Remove this account?",
            subject=account["name"],
            detail=detail,
            consequence="Its tokens are deleted from Kleis. To use it again you will have to log in again.",
            action_url=url_for(".remove", ident=account["id"]),
            button="Remove the account",
            button_id="confirm-remove",
            cancel_url=url_for(".page"),
        )
    )


@bp.post("/accounts/<ident>/remove")
def remove(ident: str) -> Response:
    return confirm.confirmed(
        lambda: operations.act(current_app.extensions["kleis_store"], ident, "remove"),
        unconfirmed="Removing an account needs its confirmation page.",
        page_endpoint=".confirm_remove",
        ident=ident,
        done_endpoint=".page",
    )
