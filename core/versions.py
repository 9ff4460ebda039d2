"""Client version strings ("0.171.0", "2.1.328"): reading them and telling which is newer."""

from __future__ import annotations

import re

# Plain release numbers only: a pre-release ("0.157.0-alpha.10") or a made-up string is never learned or compared.
_VERSION = re.compile(r"^(\d{1,6})\.(\d{1,6})\.(\d{1,6})$")
_IN_TEXT = re.compile(r"(?<![\d.])(\d{1,6}\.\d{1,6}\.\d{1,6})(?![\d.])")


def parse(version: str | None) -> tuple[int, int, int] | None:
    """(0, 171, 0) from "0.171.0"; None for anything that is not three dot-separated numbers."""
    match = _VERSION.match((version or "").strip())
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def is_version(version: str | None) -> bool:
    return parse(version) is not None


def newer(candidate: str | None, than: str | None) -> bool:
    """Whether `candidate` is a version and later than `than` (any version is newer than none)."""
    parsed = parse(candidate)
    if parsed is None:
        return False
    current = parse(than)
    return current is None or parsed > current


def highest(*versions: str | None) -> str | None:
    """The latest of the versions given (ignoring what is not a version), or None."""
    best: str | None = None
    for version in versions:
        if newer(version, best):
            best = (version or "").strip()
    return best


def find(text: str) -> str | None:
    """The first version number written in a text ("Claude Code 2.1.224 does not …" → "2.1.224")."""
    match = _IN_TEXT.search(text or "")
    return match.group(1) if match else None


def plausible_release(candidate: str | None, reference: str, minor_ahead: int) -> bool:
    """Whether a version a client claims could be a real release beside `reference` (the configured one): the same
    major version, at most `minor_ahead` minor versions later. Learning `claude-cli/99.0.0` from any key holder would
    otherwise change what every client is presented as, for good."""
    seen, known = parse(candidate), parse(reference)
    if seen is None or known is None:
        return False
    return seen[0] == known[0] and seen[1] <= known[1] + minor_ahead and seen[2] < 100_000
