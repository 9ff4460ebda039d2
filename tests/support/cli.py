"""Running `kleis.py` as a subprocess, as an operator would: its own data dir, upstreams at loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from tests.support.env import LOOPBACK_ENV, ROOT


def kleis_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment without its KLEIS_* settings, plus the loopback upstreams, the data dir and `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLEIS_")}
    env.update(LOOPBACK_ENV, KLEIS_DATA_DIR=str(data_dir))
    env.update(settings)
    return env


def run_kleis(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "kleis.py"), *args],
        capture_output=True,
        text=True,
        env=kleis_env(data_dir, **(env or {})),
        input=stdin,
        timeout=timeout,
    )


class KleisCli:
    """`kleis_cli("keys", "list")` runs the CLI on one data dir; `settings` are added to its environment."""

    def __init__(self, data_dir: Path, **settings: str) -> None:
        self.data_dir = data_dir
        self.settings = dict(settings)

    def __call__(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_kleis(self.data_dir, *args, env={**self.settings, **(env or {})}, stdin=stdin)


# -- `kleis.py serve` --------------------------------------------------------------------------
START_LINE = re.compile(r"^Kleis proxy on (http://127\.0\.0\.1:\d+), admin on (http://127\.0\.0\.1:\d+)$")


def start_serve(data_dir: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, list[str]]:
    base = kleis_env(data_dir, KLEIS_PORT="0", KLEIS_ADMIN_PORT="0", PYTHONUNBUFFERED="1", **(env or {}))
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "kleis.py"), "serve"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=base
    )
    lines: list[str] = []
    deadline = time.time() + 30
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("Kleis proxy on"):
            return process, lines
    process.kill()
    raise AssertionError(f"no start line: {lines} {process.stderr.read()}")


def stop(process: subprocess.Popen, sig: int) -> int:
    process.send_signal(sig)
    try:
        return process.wait(15)
    finally:
        if process.poll() is None:
            process.kill()
