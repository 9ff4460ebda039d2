"""What a setting's text may be: one parser per kind of value, each raising ValueError with the reason."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core import versions
from core.numbers import parse_number


def url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def optional_url(value: str) -> str:
    return url(value) if value else ""


def port(value: str) -> int:
    return parse_number(value, int, "a port number", low=0, high=65535)


def positive_int(value: str) -> int:
    return parse_number(value, int, "a whole number", above=0)


def positive_float(value: str) -> float:
    return parse_number(value, float, "a number", above=0)


def fraction(value: str) -> float:
    return parse_number(value, float, "a number", above=0, high=1)


def count(value: str) -> int:
    return parse_number(value, int, "a whole number (0: off)", low=0)


def routing(value: str) -> str:
    mode = value.lower()
    if mode not in ("primary", "headroom"):
        raise ValueError(f"must be primary or headroom, got {value!r}")
    return mode


def non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"must be a number, got {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"must be 0 or more, got {value}")
    return number


def database_url(value: str) -> str:
    if value and not value.startswith(("sqlite:///", "postgres://", "postgresql://", "postgresql+pool://", "postgres+pool://")):
        raise ValueError("must be sqlite:///<path> or postgresql://…")
    if value.startswith("sqlite:///") and value[len("sqlite:///") :] in ("", ":memory:"):
        raise ValueError("a SQLite URL needs a file path (sqlite:///path/to/kleis.db); an in-memory store would lose everything")
    return value


def text(value: str) -> str:
    return value


_HOST_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def host(value: str) -> str:
    """A listen address: an IP address or a host name (checked for shape; binding tells the rest)."""
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not value or len(value) > 253 or not all(_HOST_LABEL.match(label) for label in value.rstrip(".").split(".")):
        raise ValueError(f"must be an IP address or a host name, got {value!r}")
    return value


def timezone(value: str) -> str:
    """An IANA time zone name (Europe/Berlin, UTC), checked against the system's zone database."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"must be an IANA time zone such as UTC or Europe/Berlin, got {value!r}") from None
    return value


def flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"must be 1 or 0, got {value!r}")


def version(value: str) -> str:
    if not versions.is_version(value):
        raise ValueError(f"must be a version like 1.2.3, got {value!r}")
    return value


def log_level(value: str) -> str:
    level = value.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"must be DEBUG, INFO, WARNING or ERROR, got {value!r}")
    return level


def model_map(value: str) -> str:
    """`pattern=model, pattern=model`: each pattern a shell-style match of the model a client names."""
    for entry in (part.strip() for part in value.split(",")):
        if entry and (entry.count("=") != 1 or not all(side.strip() for side in entry.split("="))):
            raise ValueError(f"must be pattern=model pairs separated by commas (claude-haiku-*=gpt-5.4-mini), got {entry!r}")
    return value
