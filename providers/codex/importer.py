"""Importing a ChatGPT login from Codex CLI's or OpenCode's auth.json; a bad or partial file imports nothing."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from core.config import Config
from core.exceptions import InvalidInput
from providers.codex.accounts import store_account
from providers.codex.jwt import CodexIdentity, identity_from_tokens
from providers.oauth import LoginResult
from store.accounts import TokenSet
from store.db import Store

MAX_FILE_BYTES = 1024 * 1024
FORMATS_HINT = 'expected Codex CLI\'s auth.json (a "tokens" object) or OpenCode\'s auth.json (an "openai" entry)'


@dataclasses.dataclass(frozen=True)
class Imported:
    tokens: TokenSet
    identity: CodexIdentity
    source: str  # codex-cli | opencode


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _jwt_text(value: Any) -> str | None:
    """Codex CLI writes the id token as a string; some versions wrapped it as {"raw_jwt": …}."""
    if isinstance(value, dict):
        return _text(value.get("raw_jwt"))
    return _text(value)


def _require(found: dict[str, str | None], source: str) -> None:
    missing = [name for name, value in found.items() if not value]
    if missing:
        raise InvalidInput(f"the {source} file lacks {', '.join(missing)}; nothing was imported")


def _from_codex_cli(data: dict[str, Any]) -> tuple[str, str, str | None, str | None, float | None]:
    tokens = data.get("tokens")
    if not isinstance(tokens, dict):
        if _text(data.get("OPENAI_API_KEY")):
            raise InvalidInput("this Codex CLI auth.json holds an API key, not a ChatGPT login; nothing was imported")
        raise InvalidInput(f'the Codex CLI file has no "tokens" object; {FORMATS_HINT}')
    access, refresh = _text(tokens.get("access_token")), _text(tokens.get("refresh_token"))
    _require({"tokens.access_token": access, "tokens.refresh_token": refresh}, "Codex CLI")
    assert access is not None and refresh is not None
    return access, refresh, _jwt_text(tokens.get("id_token")), _text(tokens.get("account_id")), None


def _from_opencode(entry: Any) -> tuple[str, str, str | None, str | None, float | None]:
    if not isinstance(entry, dict):
        raise InvalidInput(f'the OpenCode "openai" entry is not an object; {FORMATS_HINT}')
    if entry.get("type") not in (None, "oauth"):
        raise InvalidInput(f'the OpenCode "openai" entry is of type {entry.get("type")!r}, not an OAuth login; nothing was imported')
    access, refresh = _text(entry.get("access")), _text(entry.get("refresh"))
    _require({"openai.access": access, "openai.refresh": refresh}, "OpenCode")
    assert access is not None and refresh is not None
    expires = entry.get("expires")
    expires_at = None
    if isinstance(expires, (int, float)) and not isinstance(expires, bool) and expires > 0:
        expires_at = float(expires) / 1000 if expires > 1e11 else float(expires)  # OpenCode stores milliseconds
    return access, refresh, None, _text(entry.get("accountId")), expires_at


def parse_auth_file(data: Any) -> Imported:
    """Tokens and identity from either file's parsed JSON; InvalidInput (naming fields, never values) otherwise."""
    if not isinstance(data, dict):
        raise InvalidInput(f"the file is not a JSON object; {FORMATS_HINT}")
    if "tokens" in data or "OPENAI_API_KEY" in data:
        source = "codex-cli"
        access, refresh, id_token, account_id, expires_at = _from_codex_cli(data)
    elif "openai" in data:
        source = "opencode"
        access, refresh, id_token, account_id, expires_at = _from_opencode(data["openai"])
    elif data.get("type") == "oauth" and "refresh" in data:  # one OpenCode entry on its own
        source = "opencode"
        access, refresh, id_token, account_id, expires_at = _from_opencode(data)
    else:
        raise InvalidInput(FORMATS_HINT)
    identity = identity_from_tokens(id_token, access, account_id)
    if not identity.account_id:
        raise InvalidInput("the file's tokens name no ChatGPT account id (and the file gives none); nothing was imported")
    # Unknown expiry: treat the access token as expiring now, so the first request refreshes it.
    expires_at = expires_at or identity.access_expires_at or time.time()
    metadata = dict(identity.metadata(), imported_from=source)
    return Imported(TokenSet(access, refresh, expires_at, metadata), identity, source)


def read_auth_file(path: str | Path) -> Any:
    file = Path(path).expanduser()
    if not file.is_file():
        raise InvalidInput(f"no file at {file}")
    if file.stat().st_size > MAX_FILE_BYTES:
        raise InvalidInput(f"{file} is larger than {MAX_FILE_BYTES} bytes; not an auth.json")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InvalidInput(f"{file} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:  # the message names the position, never the content
        raise InvalidInput(f"{file} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


def import_credentials(
    store: Store, config: Config, path: str | Path | None = None, *, content: Any = None, label: str = "", **options: Any
) -> LoginResult:
    """Import from `path`, or from `content` (the file's text or parsed JSON, e.g. an admin upload)."""
    if content is None:
        if path is None:
            raise InvalidInput("give the path of an auth.json (Codex CLI: ~/.codex/auth.json, OpenCode: ~/.local/share/opencode/auth.json)")
        data = read_auth_file(path)
    elif isinstance(content, (str, bytes)):
        try:
            data = json.loads(content)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"the uploaded file is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    else:
        data = content
    imported = parse_auth_file(data)
    return store_account(store, imported.tokens, imported.identity, label=label, how="import")
