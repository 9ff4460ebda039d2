"""The Kleis admin: a small Flask app (application factory), served beside the proxy."""

from __future__ import annotations

from flask import Flask


def create_app(store=None, config=None, test_config: dict | None = None) -> Flask:  # type: ignore[no-untyped-def]
    """Create and configure the admin application."""
    app = Flask(__name__)
    app.config.from_mapping(KLEIS_STORE=store, KLEIS_CONFIG=config)
    if test_config:
        app.config.update(test_config)

    @app.get("/")
    def index() -> str:
        return "<!doctype html><title>Kleis admin</title><h1>Kleis admin</h1><p>The admin pages are not built yet.</p>"

    return app
