"""GET /metrics on the admin listener: this process's Prometheus metrics (the admin bearer, unless KLEIS_METRICS_PUBLIC=1)."""

from __future__ import annotations

from flask import Blueprint, current_app
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from engine.metrics import KleisMetrics

bp = Blueprint("metrics", __name__)

PATH = "/metrics"


@bp.get(PATH)
def scrape() -> Response:
    metrics: KleisMetrics = current_app.extensions["kleis_metrics"]
    return Response(generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST)
