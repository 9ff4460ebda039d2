"""The JSON admin API under /admin/api (bearer auth): the pages' operations for scripts and tools."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from admin import keys as key_views
from admin import operations
from admin import usage as usage_views
from admin.auth import json_error
from core.display import COST_BASIS
from core.exceptions import InvalidInput, KleisError, NotFound, ProviderError, ReauthRequired, TransientProviderError
from store.db import Store
from store.keys import key_to_dict, revoke_key
from store.models import ApiKey

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/admin/api")


def _store() -> Store:
    found: Store = current_app.extensions["kleis_store"]
    return found


def body() -> dict[str, Any]:
    """The JSON object sent (an empty body is an empty object); 400 for anything else."""
    if not request.get_data(cache=True):
        return {}
    data = request.get_json(force=True, silent=True)
    if data is None:
        raise InvalidInput("the request body is not valid JSON")
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object")
    return data


def error_status(exc: KleisError) -> tuple[int, str]:
    if isinstance(exc, NotFound):
        return 404, "not_found"
    if isinstance(exc, (InvalidInput, ReauthRequired)):  # ReauthRequired here: the provider refused the code given
        return 400, "invalid_input"
    if isinstance(exc, TransientProviderError):
        return 503, "provider_unavailable"
    if isinstance(exc, ProviderError):
        return 502, "provider_error"
    return 500, "error"


@bp.errorhandler(KleisError)
def kleis_error(exc: KleisError) -> Response:
    status, kind = error_status(exc)
    return json_error(status, str(exc), kind)


def api_http_error(exc: HTTPException) -> Response:
    """404 / 405 / 400 under /admin/api as JSON, never an HTML page or a redirect."""
    return json_error(exc.code or 500, exc.description or exc.name, exc.name.lower().replace(" ", "_"))


def api_unexpected(exc: Exception) -> Response:
    log.exception("admin API %s %s failed", request.method, request.path)
    return json_error(500, f"internal error ({type(exc).__name__}); the Kleis log has the details", "internal_error")


# -- providers and accounts ------------------------------------------------------------------


@bp.get("/providers")
def providers() -> Response:
    return jsonify(
        providers=[
            {"name": p.name, "display_name": p.display_name, "available": p.available, "terms_warning": p.terms_warning}
            for p in operations.all_providers()
        ]
    )


@bp.get("/accounts")
def accounts() -> Response:
    return jsonify(accounts=operations.list_accounts())


@bp.get("/accounts/<ident>")
def account(ident: str) -> Response:
    row = operations.find(ident)
    return jsonify(account=operations.describe(row), events=operations.account_events(row.id, 20))


@bp.post("/accounts/<ident>/<action>")
def account_action(ident: str, action: str) -> Response:
    if action not in operations.ACTIONS:
        raise NotFound(f"unknown account action {action!r} (choose from {', '.join(operations.ACTIONS)}; DELETE removes)")
    try:
        message = operations.act(_store(), ident, action)
    except NotFound:
        raise
    except KleisError as exc:
        if action != "refresh":
            raise
        return json_error(502, str(exc), "refresh_failed")  # the account row now says why (needs re-auth, backoff)
    return jsonify(message=message, account=operations.describe(operations.find(ident)))


@bp.delete("/accounts/<ident>")
def remove_account(ident: str) -> Response:
    row = operations.find(ident)
    message = operations.act(_store(), row.id, "remove")
    return jsonify(message=message, removed=row.id)


@bp.post("/accounts/<provider>/oauth/start")
def oauth_start(provider: str) -> Response:
    data = body()
    device = data.get("device", False)
    if not isinstance(device, bool):
        raise InvalidInput("device: expected true or false")
    label = data.get("label", "")
    if not isinstance(label, str):
        raise InvalidInput("label: expected a string")
    info, started = operations.start_login(_store(), provider, device=device, label=label.strip())
    return jsonify({**started.to_dict(), "warning": started.warning or info.terms_warning})


@bp.post("/accounts/<provider>/oauth/complete")
def oauth_complete(provider: str) -> Response | tuple[Response, int]:
    data = body()
    flow_id = data.get("flow_id")
    if flow_id is not None and not isinstance(flow_id, str):
        raise InvalidInput("flow_id: expected a string")
    for field in ("code", "callback_url"):
        if field in data and not isinstance(data[field], str):
            raise InvalidInput(f"{field}: expected a string")
    operations.login_provider(provider)  # 404 for an unknown or missing provider before anything else
    result = operations.complete_login(_store(), provider, flow_id, data)
    if result.status == "pending":
        return jsonify({**result.to_dict(), "flow_id": flow_id or operations.flow_from_answer(data)}), 202
    assert result.account_id is not None  # a finished login names its account
    return jsonify({**result.to_dict(), "account": operations.describe(operations.find(result.account_id))})


# -- keys -----------------------------------------------------------------------------------------


@bp.get("/keys")
def keys() -> Response:
    """Every key; a budgeted one with `budget_used`: tokens and cost (list prices) spent in its current window."""
    rows = list(ApiKey.select().order_by(ApiKey.id))
    use = usage_views.budget_use(rows)
    return jsonify(keys=[{**key_to_dict(row), **({"budget_used": use[row.id]} if row.id in use else {})} for row in rows])


@bp.post("/keys")
def create_key() -> tuple[Response, int]:
    created, key = key_views.create_from(body())
    return jsonify({**created, "key": key, "note": "the key is shown this once; store it now"}), 201


@bp.post("/keys/<ident>/limits")
def key_limits(ident: str) -> Response:
    """`{"rate_limit": N, "concurrency_limit": N}`: a field left out stays; 0 or null removes that limit."""
    return jsonify(key=key_views.limit_from(ident, body()))


@bp.post("/keys/<ident>/revoke")
def revoke(ident: str) -> Response:
    return jsonify(key=key_to_dict(revoke_key(ident)))


# -- usage ------------------------------------------------------------------------------------------


@bp.get("/usage")
def usage() -> Response:
    """Default: today / 7d / 30d totals by key, account and model, plus the 20 latest requests.
    `?window=today|7d|30d` narrows to one window; `?since=24h[&by=model]` asks for a custom period;
    `key_id`, `account_id`, `model`, `provider` narrow every figure to those requests."""
    limit = usage_views.parse_limit(request.args.get("recent"), 20)
    filters = usage_views.parse_filters(request.args)
    since = request.args.get("since")
    if since is not None:
        summary = usage_views.since_summary(since, request.args.get("by") or None, **filters)
        return jsonify({**summary, "filters": filters, "cost_basis": COST_BASIS, "recent": usage_views.recent(limit, **filters)})
    window = request.args.get("window")
    windows = [window] if window else list(usage_views.WINDOWS)
    for name in windows:
        usage_views.window_start(name)  # 400 for an unknown window
    return jsonify(
        windows={name: usage_views.window_summary(name, **filters) for name in windows},
        filters=filters,
        cost_basis=COST_BASIS,
        recent=usage_views.recent(limit, **filters),
    )
