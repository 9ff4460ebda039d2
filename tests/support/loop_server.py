"""Kleis processes with the loopback provider on a shared store (tests/support/kleis_loop_server.py), for the
multi-process tests: spawned with the test's configuration, stopped whatever happens."""

from __future__ import annotations

import os
import subprocess
import sys

from core.config import Config
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.oauth import FakeOAuth
from tests.fakes.openai import FakeOpenAI
from tests.support.env import LOOPBACK_ENV, ROOT


def spawn(
    config: Config, fake_oauth: FakeOAuth, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI, **extra_env: str
) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLEIS_")}
    env.update(LOOPBACK_ENV)
    env.update(
        KLEIS_DATA_DIR=str(config.data_dir),
        KLEIS_DATABASE_URL=config.database_url,
        KLEIS_SECRET_KEY=config.secret_key,
        KLEIS_ADMIN_SECRET="x",
        KLEIS_LOG_LEVEL="WARNING",
        LOOP_MESSAGES_URL=fake_anthropic.url,
        LOOP_OPENAI_URL=fake_openai.url,
        LOOP_TOKEN_URL=f"{fake_oauth.url}/v1/oauth/token",
    )
    env.update(extra_env)  # may override the settings above
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "support" / "kleis_loop_server.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        process.kill()
        raise AssertionError(f"Kleis did not start: {line!r} {process.stderr.read()}")
    return process, f"http://127.0.0.1:{line.split()[1]}"


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
