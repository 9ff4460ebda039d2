"""What Kleis learned from traffic, in memory on the request path: client versions seen and versions a provider required.

Providers read and observe values here (a dict lookup, no I/O). New values are marked dirty; engine.learned writes
them to the store off the event loop, and merges what other processes on the same store learned.
"""

from __future__ import annotations

from collections.abc import Mapping

from core import versions

# The names under which values are learned (store.learned keeps them as `learned.<name>`).
CODEX_CLI_VERSION = "codex.cli_version"  # the highest Codex CLI version seen in traffic the backend accepted
CLAUDE_CODE_VERSION = "claude.code_version"  # the highest Claude Code version seen in traffic Claude accepted
CLAUDE_REQUIRED_VERSION = "claude.required_version"  # adopted from a claude_code_version_too_old answer


class LearnedValues:
    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self.values: dict[str, str] = {k: v for k, v in (values or {}).items() if versions.is_version(v)}
        self.dirty: set[str] = set()
        self.generation = 0  # grows on every change, so callers can cache what they derive from the values

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def observe(self, name: str, version: str | None) -> bool:
        """Remember `version` under `name` if it is newer than what is known; True when it was (and is to be stored)."""
        if not versions.newer(version, self.values.get(name)):
            return False
        self.values[name] = (version or "").strip()
        self.dirty.add(name)
        self.generation += 1
        return True

    def merge(self, values: Mapping[str, str]) -> None:
        """The store's values (another process may have learned one, the operator may have forgotten one) replace
        what is known, except a value learned here and not written yet."""
        followed = {name: version for name, version in values.items() if versions.is_version(version)}
        unwritten = set()
        for name in self.dirty:
            mine = self.values.get(name)
            if versions.newer(mine, followed.get(name)):
                followed[name] = mine or ""
                unwritten.add(name)
        self.dirty = unwritten
        if followed != self.values:
            self.values = followed
            self.generation += 1

    def take_dirty(self) -> dict[str, str]:
        """The values to store, once; a failed write puts them back with `mark_dirty`."""
        taken = {name: self.values[name] for name in self.dirty if name in self.values}
        self.dirty.clear()
        return taken

    def mark_dirty(self, names: set[str]) -> None:
        self.dirty |= names
