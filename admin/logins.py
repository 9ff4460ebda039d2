"""Adding accounts from the admin page: each provider's real login (paste, callback URL or device code)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from admin import operations
from core.exceptions import InvalidInput, KleisError, NotFound, TransientProviderError
from providers.oauth import LoginResult, LoginStart
from store.db import Store

bp = Blueprint("logins", __name__, url_prefix="/admin/accounts/add")

# What the flow page shows, kept in the (signed) session so a reload or another Kleis process can show it
# again. None of it is secret: the PKCE verifier and device code stay encrypted in the store.
SHOWN_FIELDS = ("flow_id", "kind", "expires_at", "authorize_url", "user_code", "verification_uri", "interval", "instructions")
ANSWER_FIELD = {"paste": "code", "callback": "callback_url"}


def _store() -> Store:
    found: Store = current_app.extensions["kleis_store"]
    return found


def _remember(provider: str, start: LoginStart) -> None:
    logins = dict(session.get("logins") or {})
    logins[provider] = {field: getattr(start, field) for field in SHOWN_FIELDS}
    session["logins"] = logins


def _current(provider: str) -> dict[str, Any] | None:
    flow = (session.get("logins") or {}).get(provider)
    return flow if isinstance(flow, dict) and flow.get("flow_id") else None


def _forget(provider: str) -> None:
    logins = dict(session.get("logins") or {})
    if logins.pop(provider, None) is not None:
        session["logins"] = logins


@bp.before_request
def _unavailable() -> tuple[str, int] | None:
    """Every page of a provider that cannot log in here answers 404 (the device poll answers in JSON itself)."""
    provider = (request.view_args or {}).get("provider")
    if provider is None or request.endpoint == "logins.poll":
        return None
    try:
        operations.login_provider(str(provider))
    except NotFound as exc:
        return render_template("message.html", title="Provider not available", message=str(exc)), 404
    return None


@bp.get("/<provider>")
def start_page(provider: str) -> str | tuple[str, int]:
    info = operations.provider_info(provider)
    return render_template("add_account.html", provider=info, flow=_current(provider), supports_device=provider == "codex")


@bp.post("/<provider>")
def start(provider: str) -> Response | tuple[str, int]:
    try:
        _, started = operations.start_login(
            _store(), provider, device=request.form.get("device") == "1", label=request.form.get("label", "").strip()
        )
    except KleisError as exc:
        flash(f"Could not start the login: {exc}", "error")
        return redirect(url_for(".start_page", provider=provider), code=303)
    _remember(provider, started)
    return redirect(url_for(".flow_page", provider=provider), code=303)


@bp.get("/<provider>/flow")
def flow_page(provider: str) -> Response | str | tuple[str, int]:
    flow = _current(provider)
    if flow is None:
        flash("No login in progress for this provider: start one.", "error")
        return redirect(url_for(".start_page", provider=provider), code=303)
    info = operations.provider_info(provider)
    expired = flow["expires_at"] < time.time()
    return render_template("login_flow.html", provider=info, flow=flow, expired=expired, answer_field=ANSWER_FIELD.get(flow["kind"]))


def _complete(provider: str) -> LoginResult:
    flow = _current(provider)
    if flow is None:
        raise InvalidInput("no login in progress for this provider (it finished, or this session never started it): start one")
    answer: dict[str, Any] = {}
    field = ANSWER_FIELD.get(flow["kind"])
    if field:
        value = request.form.get(field, "").strip()
        if not value:
            raise InvalidInput(
                "paste the code#state the page showed" if field == "code" else "paste the full address the browser landed on"
            )
        answer[field] = value
    result = operations.complete_login(_store(), provider, flow["flow_id"], answer)
    if result.status == "done":
        _forget(provider)
    return result


@bp.post("/<provider>/complete")
def complete(provider: str) -> Response | tuple[str, int]:
    try:
        result = _complete(provider)
    except KleisError as exc:
        flash(str(exc), "error")
        return redirect(url_for(".flow_page", provider=provider), code=303)
    if result.status == "pending":
        flash(result.message or "Still waiting for the code to be approved.", "info")
        return redirect(url_for(".flow_page", provider=provider), code=303)
    flash(result.message or "Account added.", "ok")
    return redirect(url_for("accounts.page") + f"#account-{result.account_id}", code=303)


@bp.post("/<provider>/poll")
def poll(provider: str) -> Response:
    """The device-flow page asks here (with its CSRF token) until the provider confirms."""
    try:
        operations.login_provider(provider)
        result = _complete(provider)
    except TransientProviderError as exc:
        return jsonify(status="pending", message=str(exc), interval=10)
    except KleisError as exc:
        return jsonify(status="error", message=str(exc))
    if result.status == "pending":
        return jsonify(status="pending", message=result.message, interval=result.interval)
    flash(result.message or "Account added.", "ok")
    return jsonify(status="done", message=result.message, redirect=url_for("accounts.page") + f"#account-{result.account_id}")
