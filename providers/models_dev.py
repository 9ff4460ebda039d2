"""The models.dev registry: fetched with a short timeout, kept in memory with a TTL, last good copy on disk.

Kleis starts offline from the last good copy (or a small built-in list) and never lets a failed fetch break a
request: the failure is logged once, kept in a status file that `kleis.py doctor` reads, and retried at the
next TTL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import httpx

from providers.catalog_builtin import BUILTIN_REGISTRY

log = logging.getLogger(__name__)

FETCH_TIMEOUT = 10.0


def valid_registry(data: Any) -> bool:
    """The top level of api.json: provider id → {id, models: {…}}."""
    return isinstance(data, dict) and bool(data) and all(isinstance(p, dict) and isinstance(p.get("models"), dict) for p in data.values())


class ModelsDev:
    def __init__(self, url: str, ttl: float, data_dir: Path) -> None:
        self.url = url
        self.ttl = ttl
        self.path = data_dir / "models-dev.json"
        self.status_path = data_dir / "models-dev.status.json"
        self.data: dict[str, Any] = {}
        self.source = "none"
        self.fetched_at = 0.0
        self.last_error: str | None = None
        self._error_logged = False

    # -- offline start -------------------------------------------------------------------
    def load_offline(self) -> None:
        try:
            data = json.loads(self.path.read_text())
            if valid_registry(data):
                self.data, self.source = data, "persisted"
                self.fetched_at = self.path.stat().st_mtime
                return
        except (OSError, ValueError):
            pass
        self.data, self.source, self.fetched_at = BUILTIN_REGISTRY, "builtin", 0.0

    def stale(self, now: float | None = None) -> bool:
        return self.source != "fetched" or (time.time() if now is None else now) - self.fetched_at >= self.ttl

    # -- fetching --------------------------------------------------------------------------
    def _accept(self, response: httpx.Response) -> bool:
        if response.status_code != 200:
            return self._failed(f"{self.url} answered {response.status_code}")
        try:
            data = response.json()
        except ValueError:
            return self._failed(f"{self.url} did not answer JSON")
        if not valid_registry(data):
            return self._failed(f"{self.url} did not answer a models.dev registry")
        self.data, self.source, self.fetched_at = data, "fetched", time.time()
        self.last_error, self._error_logged = None, False
        self._persist(response.content)
        self._write_status()
        return True

    def _failed(self, error: str) -> bool:
        self.last_error = error
        if not self._error_logged:
            log.warning("models.dev fetch failed (%s); using the %s copy", error, self.source)
            self._error_logged = True
        self._write_status()
        return False

    async def refresh(self, http: httpx.AsyncClient) -> bool:
        """Fetch now (parsing and file writes off the event loop). True when a new copy was taken."""
        try:
            response = await http.get(self.url, timeout=FETCH_TIMEOUT)
        except httpx.HTTPError as exc:
            return await asyncio.to_thread(self._failed, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        return await asyncio.to_thread(self._accept, response)

    def refresh_blocking(self, timeout: float = FETCH_TIMEOUT) -> bool:
        try:
            with httpx.Client(timeout=timeout, trust_env=False) as http:
                response = http.get(self.url)
        except httpx.HTTPError as exc:
            return self._failed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        return self._accept(response)

    # -- files -------------------------------------------------------------------------------
    def _persist(self, content: bytes) -> None:
        temporary = self.path.with_suffix(".tmp")
        try:
            temporary.write_bytes(content)
            os.replace(temporary, self.path)
        except OSError as exc:
            log.warning("cannot keep the models.dev copy in %s: %s", self.path, exc)

    def _write_status(self) -> None:
        status = {
            "url": self.url,
            "last_attempt": time.time(),
            "fetched_at": self.fetched_at if self.source == "fetched" else None,
            "error": self.last_error,
        }
        try:
            self.status_path.write_text(json.dumps(status))
        except OSError:
            pass

    def read_status(self) -> dict[str, Any]:
        try:
            status = json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}
        return status if isinstance(status, dict) else {}
