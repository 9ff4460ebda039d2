"""The identity Kleis presents to a provider (versions, API version, profile) and where each value comes from.

One `Identity` per provider, built from the configuration and the learned values: the request path reads its
values, and `kleis.py doctor` prints it with the source of each value and warns where a default has fallen behind
what a real client sent.
"""

from __future__ import annotations

import dataclasses
import enum

from core import versions
from core.config import Config, default_of, env_of


class Source(enum.StrEnum):
    DEFAULT = "default"  # Kleis's built-in value
    SETTING = "setting"  # the operator's KLEIS_* setting
    LEARNED = "learned"  # the highest version seen from a real client the provider accepted
    ADOPTED = "adopted"  # a version a provider's refusal named as required


SOURCE_WORDS = {
    Source.DEFAULT: "built-in default",
    Source.SETTING: "from the setting",
    Source.LEARNED: "learned from a real client",
    Source.ADOPTED: "adopted from a provider's error",
}


@dataclasses.dataclass(frozen=True)
class Presented:
    """One value of the identity."""

    name: str  # what it is, e.g. "Codex CLI version"
    value: str
    source: Source
    setting: str = ""  # the KLEIS_* variable that sets it

    def describe(self) -> str:
        where = SOURCE_WORDS[self.source] + (f" {self.setting}" if self.source is Source.SETTING and self.setting else "")
        return f"{self.name} {self.value or '(none)'} ({where})"


@dataclasses.dataclass(frozen=True)
class Identity:
    provider: str
    values: tuple[Presented, ...]
    warnings: tuple[str, ...] = ()

    def value(self, name: str) -> str:
        return next(p.value for p in self.values if p.name == name)

    def describe(self) -> str:
        return "; ".join(p.describe() for p in self.values)


def configured(config: Config, field: str, name: str) -> Presented:
    """A value read from the configuration: its setting's default, or what the operator set."""
    value = str(getattr(config, field))
    source = Source.DEFAULT if value == default_of(field) else Source.SETTING
    return Presented(name, value, source, env_of(field))


def newest_version(base: Presented, *candidates: tuple[str | None, Source]) -> tuple[Presented, tuple[str, ...]]:
    """The configured version, or a learned or adopted one when it is newer; and a warning for each such version
    (the configured value, a default or a setting, has fallen behind a real client or a provider's floor)."""
    chosen, warnings = base, []
    for version, source in candidates:
        if version is None or not versions.newer(version, chosen.value):
            continue
        chosen = Presented(base.name, version, source, base.setting)
    for version, source in candidates:
        if version is None or not versions.newer(version, base.value):
            continue
        what = "the built-in default" if base.source is Source.DEFAULT else f"{base.setting}={base.value}"
        seen = "seen from a real client" if source is Source.LEARNED else "required by the provider"
        warnings.append(
            f"{base.name}: {what} is older than {version} {seen}; Kleis presents {chosen.value} "
            f"(raise {base.setting} to make it the configured value)"
        )
    return chosen, tuple(warnings)
