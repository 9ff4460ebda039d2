"""The processes a benchmark run starts: the fast upstream, a bare mitmproxy, and Kleis (one or more)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def spawn(module: str, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    """Run `python -m module`, wait for its `PORT n` line."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        line = process.stdout.readline()
        if line.startswith("PORT "):
            return process, int(line.split()[1])
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"{module} did not start: {process.stderr.read()}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process has had (MB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss(pid: int) -> None:
    """Start VmHWM again from the present RSS (Linux: `5` to clear_refs), so a peak belongs to what runs next."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass  # not permitted: the peak then covers the process's whole life


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
