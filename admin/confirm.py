"""Destructive actions behind a confirmation page: the page itself, and the POST that needs its `confirm=yes`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from core.exceptions import KleisError


@dataclasses.dataclass(frozen=True)
class Confirmation:
    """What confirm.html asks: the question about a subject, what follows, and where the button posts."""

    title: str
    question: str
    subject: str
    detail: str
    consequence: str
    action_url: str
    button: str
    button_id: str
    cancel_url: str


def page(confirmation: Confirmation) -> str:
    return render_template("confirm.html", confirm=confirmation)


def confirmed(action: Callable[[], str], *, unconfirmed: str, page_endpoint: str, ident: str, done_endpoint: str) -> Response:
    """Run `action` (its message is flashed) only when the form came from the confirmation page."""
    if request.form.get("confirm") != "yes":
        flash(unconfirmed, "error")
        return redirect(url_for(page_endpoint, ident=ident), code=303)
    try:
        flash(action(), "ok")
    except KleisError as exc:
        flash(str(exc), "error")
    return redirect(url_for(done_endpoint), code=303)
