"""The Copilot token exchange and its refresh, the refresh schedule, the lifecycle's reaction, and /models.
Here the parts that need no socket; through listeners: tests/e2e/test_copilot_tokens.py."""

from __future__ import annotations

import pytest

from providers.copilot import tokens


@pytest.mark.parametrize(
    ("expires_in", "refresh_in", "deadline"),
    [(1800, 1500, 1440), (1800, None, 1740), (1800, 40, 20), (100, 1500, 50), (60, 2, 1)],
)
def test_refresh_deadline(expires_in: float, refresh_in: float | None, deadline: float) -> None:
    assert tokens.refresh_deadline(1000.0, 1000.0 + expires_in, refresh_in) == pytest.approx(1000.0 + deadline)
