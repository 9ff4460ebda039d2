"""Logging in to the admin with its secret, logging out, and the guard every request passes first."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from admin.security import LoginThrottle, bearer_token, end_session, new_session_id, secret_matches, session_ended, wait_text

bp = Blueprint("auth", __name__, url_prefix="/admin")

API_PREFIX = "/admin/api"
METRICS_PATH = "/metrics"
PUBLIC_ENDPOINTS = frozenset({"auth.login", "static", "root"})


def throttle() -> LoginThrottle:
    found: LoginThrottle = current_app.extensions["kleis_throttle"]
    return found


def admin_secret() -> str:
    return str(current_app.extensions["kleis_store"].admin_secret)


def client_address() -> str:
    return request.remote_addr or "unknown"


def wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def json_error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> Response:
    response = jsonify({"error": {"type": kind, "message": message}})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def guard() -> Response | None:
    """Deny by default: the API needs the bearer, every page but the login page needs a session; forms need CSRF.
    /metrics takes the API's bearer (what Prometheus sends), unless KLEIS_METRICS_PUBLIC=1."""
    if request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/"):
        return api_guard()
    if request.path == METRICS_PATH:
        return None if current_app.config["KLEIS_CONFIG"].metrics_public else api_guard()
    if request.endpoint is None:  # no such page: let Flask answer 404 / 405
        return None
    if session.get("admin") and session_ended(session.get("sid")):
        session.clear()  # logged out elsewhere (a copied cookie) or issued before sessions had ids
    if request.endpoint not in PUBLIC_ENDPOINTS and not session.get("admin"):
        if wants_json():
            return json_error(401, "log in to the admin page first (your session may have expired)", "unauthorized")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    current_app.extensions["csrf"].protect()
    return None


def api_guard() -> Response | None:
    """`Authorization: Bearer <admin secret>`; the session cookie never authenticates the API (so it needs no CSRF)."""
    presented = bearer_token(request.headers.get("Authorization"))
    verdict = throttle().attempt(client_address(), presented, check_secret)
    if verdict.retry_after > 0:
        return json_error(
            429,
            f"too many failed attempts from this address; try again in {wait_text(verdict.retry_after)} "
            f"(the right secret is still accepted, after {wait_text(throttle().locked_delay)})",
            "rate_limited",
            {"Retry-After": str(int(verdict.retry_after) + 1)},
        )
    if not verdict.ok:
        message = "wrong admin secret" if presented else "send the admin secret as Authorization: Bearer <secret>"
        return json_error(401, message, "unauthorized", {"WWW-Authenticate": 'Bearer realm="kleis-admin"'})
    g.api_authenticated = True
    return None


def check_secret(presented: str | None) -> bool:
    return secret_matches(presented, admin_secret())


def safe_next(target: str | None) -> str:
    """Only a path of this admin (no scheme, no host, no //) is followed after login."""
    default = url_for("accounts.page")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/admin") or target.startswith("//") or "\\" in target:
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    if request.method == "GET":
        if session.get("admin"):
            return redirect(safe_next(request.args.get("next")))
        return render_template("login.html", next=request.args.get("next", ""))
    verdict = throttle().attempt(client_address(), request.form.get("secret") or "", check_secret)
    if verdict.retry_after > 0:
        message = (
            f"Too many failed attempts from your address: try again in {wait_text(verdict.retry_after)}"
            f" (the right secret is still accepted, after {wait_text(throttle().locked_delay)})."
        )
        return render_template("login.html", error=message, next=request.form.get("next", "")), 429
    if not verdict.ok:
        lockout = verdict.lockout
        message = "Wrong admin secret." + (f" Further attempts from your address wait {wait_text(lockout)}." if lockout else "")
        return render_template("login.html", error=message, next=request.form.get("next", "")), 401
    session.clear()  # a fresh session (and CSRF token) after login: nothing carries over from before
    session["admin"] = True
    session["sid"] = new_session_id()
    session["login_at"] = time.time()
    flash("Logged in.", "ok")
    return redirect(safe_next(request.form.get("next")), code=303)


@bp.post("/logout")
def logout() -> Response:
    if isinstance(session.get("sid"), str):
        end_session(session["sid"], current_app.permanent_session_lifetime.total_seconds())
    session.clear()
    flash("Logged out.", "ok")
    return redirect(url_for("auth.login"), code=303)
