"""Provider drift: refusals caused by what Kleis presents, or by the billing lane a provider puts the request in.

A client version or editor profile a provider retired, or third-party traffic billed to a lane the account lacks:
described once per cause for the operator (with the setting to change) and with a hint for the client.
"""

from __future__ import annotations

import dataclasses
import logging

log = logging.getLogger("providers.drift")


@dataclasses.dataclass(frozen=True)
class Drift:
    """What a drift refusal means and what to do about it."""

    cause: str  # distinct per cause (provider, what was presented, what was refused): logged once
    setting: str  # the KLEIS_* setting that changes what Kleis presents ("" when no setting helps)
    hint: str  # Kleis's words added to the provider's message the client sees
    retry: bool = False  # Kleis now presents a value the provider named: sending the request once more can succeed

    def for_operator(self, provider: str) -> str:
        change = f"; change {self.setting}" if self.setting else ""
        return f"{provider}: {self.hint}{change}"


_logged: set[str] = set()
_REMEMBERED = 1000  # causes remembered at most (model names come from clients); past that the set starts over


def log_once(provider: str, drift: Drift) -> bool:
    """Log a drift refusal the first time its cause is seen in this process; True when it was logged now."""
    if drift.cause in _logged:
        return False
    if len(_logged) >= _REMEMBERED:
        _logged.clear()
    _logged.add(drift.cause)
    log.warning("drift: %s", drift.for_operator(provider))
    return True
