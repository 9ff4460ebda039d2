"""The Kleis admin: a small Flask app (application factory), served beside the proxy."""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

from flask import Flask, redirect, render_template, request, url_for
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from admin import accounts, api, auth, keys, logins, metrics, usage
from admin.security import LoginThrottle, TLSAwareSessionInterface, session_signing_key
from core.config import Config, load_config
from core.display import fmt_cost, fmt_in, fmt_time
from engine.metrics import KleisMetrics, process_metrics
from store.db import Store, open_store

log = logging.getLogger(__name__)

SESSION_HOURS = 12
# Pages load nothing from elsewhere, run only our own script, and cannot be framed (the actions are one click).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def create_app(
    store: Store | None = None,
    config: Config | None = None,
    test_config: dict[str, Any] | None = None,
    metrics_source: KleisMetrics | None = None,
) -> Flask:
    """Create and configure the admin application (opening the store from the environment when none is given);
    /metrics serves `metrics_source`, by default this process's (what the proxy beside it counts)."""
    config = config or (store.config if store is not None else load_config())
    store = store or open_store(config)
    app = Flask(__name__, static_url_path="/admin/static")
    _configure(app, store, config, test_config)
    app.session_interface = TLSAwareSessionInterface()
    app.extensions["kleis_store"] = store
    app.extensions["kleis_throttle"] = app.config.get("KLEIS_THROTTLE") or LoginThrottle()
    app.extensions["kleis_metrics"] = metrics_source or process_metrics()
    CSRFProtect(app)
    if isinstance(app.json, DefaultJSONProvider):
        app.json.sort_keys = False

    app.before_request(auth.guard)
    for blueprint in (auth.bp, accounts.bp, logins.bp, keys.bp, usage.bp, api.bp, metrics.bp):
        app.register_blueprint(blueprint)
    app.jinja_env.filters["time"] = fmt_time
    app.jinja_env.filters["ago"] = fmt_in
    app.jinja_env.filters["cost"] = fmt_cost
    app.context_processor(lambda: {"now": time.time(), "timezone": config.timezone})
    _register_errors(app)
    app.after_request(_security_headers)

    @app.get("/", endpoint="root")
    def root() -> Response:
        return redirect(url_for("accounts.page"))

    @app.get("/admin/")
    def home() -> Response:
        return redirect(url_for("accounts.page"))

    return app


def _configure(app: Flask, store: Store, config: Config, test_config: dict[str, Any] | None) -> None:
    """Sessions, CSRF and size limits, then the test configuration on top."""
    app.config.from_mapping(
        KLEIS_STORE=store,
        KLEIS_CONFIG=config,
        SECRET_KEY=session_signing_key(store),
        SESSION_COOKIE_NAME="kleis_admin_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=False,  # set per request: Secure whenever the request came over TLS
        PERMANENT_SESSION_LIFETIME=datetime.timedelta(hours=SESSION_HOURS),  # signed cookies older than this are refused
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by auth.guard, after the bearer decision for the API
        WTF_CSRF_TIME_LIMIT=SESSION_HOURS * 3600,
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    if test_config:
        app.config.update(test_config)


def _is_api() -> bool:
    return request.path == auth.API_PREFIX or request.path.startswith(auth.API_PREFIX + "/")


def _register_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Response | tuple[str, int]:
        if auth.wants_json():
            return auth.json_error(400, f"CSRF check failed: {exc.description}; reload the page", "csrf_failed")
        message = f"{exc.description} The form was too old or did not come from this admin page: reload the page and try again."
        return render_template("message.html", title="Form refused", message=message), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response | HTTPException:
        return api.api_http_error(exc) if _is_api() else exc

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response | tuple[str, int]:
        if _is_api():
            return api.api_unexpected(exc)
        log.exception("admin page %s %s failed", request.method, request.path)
        return render_template("message.html", title="Something went wrong", message=f"{type(exc).__name__}: see the Kleis log."), 500


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")  # CSRF's HTTPS referrer check needs same-origin referrers
    if not request.path.startswith("/admin/static/"):
        response.headers["Cache-Control"] = "no-store"  # a new key or login code must not linger in a cache
    return response
