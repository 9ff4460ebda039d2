"""Reading a GitHub token for Copilot from other tools' files: Copilot's apps.json/hosts.json, OpenCode's auth.json."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from core.config import Config
from core.exceptions import InvalidInput

OPENCODE_KEY = "github-copilot"


@dataclasses.dataclass(frozen=True)
class FoundToken:
    github_token: str
    login: str | None  # the GitHub login the file names, if any
    source: str  # which format it came from, for messages


def expected_host(config: Config) -> str:
    """The GitHub host whose credentials apply: the enterprise domain if set, else github.com."""
    return normalise_host(config.github_domain) or "github.com"


def normalise_host(value: str | None) -> str:
    return (value or "").strip().removeprefix("https://").removeprefix("http://").rstrip("/").lower()


def check_token_text(token: Any, where: str) -> str:
    """A GitHub token that can go into a header: one line of printable ASCII, and not a Copilot token."""
    if not isinstance(token, str) or not token.strip():
        raise InvalidInput(f"{where} holds no GitHub token")
    token = token.strip()
    if any(ch.isspace() or not (32 < ord(ch) < 127) for ch in token):
        raise InvalidInput(f"{where} does not look like a GitHub token (it has spaces or non-ASCII characters)")
    if token.startswith("tid="):
        raise InvalidInput(f"{where} is a short-lived Copilot token, not a GitHub token; import the GitHub token it was made from")
    return str(token)


def read_file(path: str, config: Config) -> FoundToken:
    """The GitHub token in a credentials file; InvalidInput (naming the problem) when there is none to import."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise InvalidInput(f"no file at {path}")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"{path} is not a readable JSON file ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} is not a Copilot apps.json/hosts.json or an OpenCode auth.json (not a JSON object)")
    if OPENCODE_KEY in data:
        return _from_opencode(data[OPENCODE_KEY], path, config)
    return _from_copilot_apps(data, path, config)


def _from_opencode(entry: Any, path: str, config: Config) -> FoundToken:
    """OpenCode keeps the GitHub token as `refresh` (older versions put a Copilot token in `access`)."""
    if not isinstance(entry, dict) or entry.get("type") != "oauth":
        raise InvalidInput(f"the {OPENCODE_KEY} entry of {path} is not an OAuth login")
    enterprise = normalise_host(entry.get("enterpriseUrl") if isinstance(entry.get("enterpriseUrl"), str) else None)
    wanted = normalise_host(config.github_domain)
    if enterprise != wanted:
        if enterprise:
            raise InvalidInput(
                f"the {OPENCODE_KEY} login in {path} is for GitHub Enterprise {enterprise}; "
                f"set KLEIS_GITHUB_DOMAIN={enterprise} to import it"
            )
        raise InvalidInput(f"the {OPENCODE_KEY} login in {path} is for github.com, but KLEIS_GITHUB_DOMAIN is {wanted}")
    token = check_token_text(entry.get("refresh"), f"the {OPENCODE_KEY} entry of {path}")
    return FoundToken(token, None, "OpenCode auth.json")


def _from_copilot_apps(data: dict[str, Any], path: str, config: Config) -> FoundToken:
    """apps.json keys are `host:client id`, hosts.json keys are `host`; values carry oauth_token and user."""
    host = expected_host(config)
    entries = [(key, value) for key, value in data.items() if isinstance(value, dict) and "oauth_token" in value]
    if not entries:
        raise InvalidInput(
            f"{path} is not a Copilot apps.json/hosts.json (no oauth_token entries) nor an OpenCode auth.json (no {OPENCODE_KEY} entry)"
        )
    matching = [(key, value) for key, value in entries if normalise_host(key.partition(":")[0]) == host]
    if not matching:
        found = ", ".join(sorted({key.partition(":")[0] for key, _ in entries}))
        raise InvalidInput(f"{path} has no Copilot login for {host} (it has: {found}); KLEIS_GITHUB_DOMAIN selects the host")
    preferred = [
        (k, v) for k, v in matching if k.partition(":")[2] == config.copilot_client_id or v.get("githubAppId") == config.copilot_client_id
    ]
    key, value = (preferred or matching)[0]
    token = check_token_text(value.get("oauth_token"), f"the {key!r} entry of {path}")
    login = value.get("user") if isinstance(value.get("user"), str) and value.get("user") else None
    return FoundToken(token, login, "Copilot apps.json" if ":" in key else "Copilot hosts.json")
