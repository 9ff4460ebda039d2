"""Every fixture of the suite, in one place: the environment, the store, the loopback fakes, a live Kleis, the admin
app, the CLI and PostgreSQL. Helpers that are not fixtures live in tests/support, the fake upstreams in tests/fakes.

Tiers, by directory (each test is marked with its tier here):
- tests/unit/: plain functions, the store on SQLite files, the Flask app without a login authority — no sockets, no
  processes;
- tests/addons/: the addons' hooks under mitmproxy's taddons with flows made by tflow — no sockets, no processes;
- tests/e2e/: anything that starts a listener (a live Kleis, a loopback fake upstream, the admin's login authority),
  a process, a browser or a database server.
A test in the first two tiers that binds or connects a socket or starts a process fails (the guard below), and so
does one that asks for a fixture that starts something; `make test-fast` runs those two tiers.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402

from addons.server import ProxyThread  # noqa: E402
from addons.services import Parts  # noqa: E402
from core.config import Config  # noqa: E402
from providers import registry  # noqa: E402
from providers.base import Provider  # noqa: E402
from providers.codex import CodexProvider  # noqa: E402
from store.db import Store, open_store  # noqa: E402
from tests.fakes.admin_providers import TEST_PROVIDERS, LoginAuthority, TestProvider  # noqa: E402
from tests.fakes.anthropic import FakeAnthropic  # noqa: E402
from tests.fakes.claude import FakeClaudeAPI, claude_oauth  # noqa: E402
from tests.fakes.codex import FakeCodex  # noqa: E402
from tests.fakes.codex_auth import FakeCodexAuth  # noqa: E402
from tests.fakes.copilot import FakeCopilot  # noqa: E402
from tests.fakes.github import FakeGitHub  # noqa: E402
from tests.fakes.oauth import FakeOAuth  # noqa: E402
from tests.fakes.openai import FakeOpenAI  # noqa: E402
from tests.support.admin import Api, login  # noqa: E402
from tests.support.claude import start_claude  # noqa: E402
from tests.support.cli import KleisCli  # noqa: E402
from tests.support.codex import start_codex  # noqa: E402
from tests.support.env import LOOPBACK_ENV, make_config  # noqa: E402
from tests.support.live import LiveKleis, start_kleis  # noqa: E402
from tests.support.postgres import TempPostgres  # noqa: E402

TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "addons", "e2e")
FAST_TIERS = frozenset({"unit", "addons"})
# Fixtures that start something real (a listener, a server process, a browser): only an e2e test may use one.
E2E_FIXTURES = frozenset(
    {
        "kleis",
        "live_kleis",
        "run_proxy",
        "claude_api",
        "codex_backend",
        "copilot_api",
        "fake_anthropic",
        "fake_openai",
        "kleis_cli",
        "postgres_server",
        "browser",
        "fake_oauth",
        "claude_auth",
        "codex_auth",
        "github",
        "authority",
    }
)


def tier_of(item: pytest.Item) -> str:
    relative = Path(str(item.path)).resolve().relative_to(TESTS)
    if len(relative.parts) < 2 or relative.parts[0] not in TIERS:
        raise pytest.UsageError(f"{relative}: a test lives in one of tests/{{{','.join(TIERS)}}}/")
    return relative.parts[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = tier_of(item)
        item.add_marker(getattr(pytest.mark, tier))
        starts = sorted(E2E_FIXTURES.intersection(getattr(item, "fixturenames", ())))
        if tier in FAST_TIERS and starts:
            raise pytest.UsageError(f"{item.nodeid} uses {', '.join(starts)}, which start something: it belongs in tests/e2e/")


class OutsideFastTier(AssertionError):
    """A test in tests/unit or tests/addons opened a socket or started a process."""


@contextlib.contextmanager
def fast_tier_guard(item: pytest.Item) -> Iterator[None]:
    """While a test of the unit or addons tier runs, binding or connecting a socket, or starting a process, fails it.
    A socket pair (asyncio's self-pipe) needs neither, so an event loop still runs."""
    if tier_of(item) not in FAST_TIERS:
        yield
        return
    guarded = [(socket.socket, name) for name in ("bind", "connect", "connect_ex")] + [(subprocess.Popen, "__init__")]
    originals = [(owner, name, getattr(owner, name)) for owner, name in guarded]

    def refusing(name: str) -> Callable[..., Any]:
        def refuse(self: object, what: object = None, *args: object, **kwargs: object) -> Any:
            doing = "start a process" if name == "__init__" else f"{name} a socket"
            raise OutsideFastTier(f"{item.nodeid} tried to {doing} ({what!r}): a test doing that belongs in tests/e2e/")

        return refuse

    for owner, name, _ in originals:
        setattr(owner, name, refusing(name))
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, None]:
    with fast_tier_guard(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, None]:
    with fast_tier_guard(item):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, None]:
    if nextitem is None:  # the session's own fixtures (an e2e test's database server, say) end here too
        yield
        return
    with fast_tier_guard(item):
        yield


# -- the environment and the store -----------------------------------------------------------------
@pytest.fixture(autouse=True)
def _no_real_upstreams(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KLEIS_"):
            monkeypatch.delenv(name)
    for name, value in LOOPBACK_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path / "data")


@pytest.fixture
def store(config: Config) -> Iterator[Store]:
    opened = open_store(config)
    yield opened
    opened.close()


# -- loopback fakes and a live Kleis -----------------------------------------------------------------
@pytest.fixture
def fake_oauth() -> Iterator[FakeOAuth]:
    fake = FakeOAuth().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_anthropic(fake_oauth: FakeOAuth) -> Iterator[FakeAnthropic]:
    fake = FakeAnthropic(valid_tokens=fake_oauth.issued_access).start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_openai(fake_oauth: FakeOAuth) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(valid_tokens=fake_oauth.issued_access).start()
    yield fake
    fake.stop()


@pytest.fixture
def live_kleis(request: pytest.FixtureRequest, store: Store, config: Config, run_proxy: Callable[..., ProxyThread]) -> Callable[..., Any]:
    """Start a Kleis listener, a key and what it serves; every one started is stopped at the test's end. Keywords
    other than the options below change the configuration.

    - `live_kleis(Parts(health=True), upstream_timeout=1.0)`: the loopback provider against the loopback fakes
      (fake_oauth, fake_anthropic, fake_openai), no account yet (`live.add_account()`): a LiveKleis;
    - `live_kleis(parts, provider="claude", expires_in=3600, signals=False)`: the Claude provider against claude_auth
      and claude_api, one account: a ClaudeLive;
    - `live_kleis(parts, provider="codex", provider_factory=CodexProvider)`: the Codex provider against codex_auth and
      codex_backend, an account logged in: a CodexKleis.
    The fakes are the test's own fixtures, started only for the provider asked for; run_proxy stops the listeners."""

    def start(
        parts: Parts | None = None,
        *,
        provider: str = "loop",
        expires_in: float = 3600,
        signals: bool = False,
        provider_factory: Callable[[Config], Provider] | None = None,
        **changes: Any,
    ) -> Any:
        fake, cfg = request.getfixturevalue, config.replace(**changes)
        if provider == "claude":
            return start_claude(
                store, cfg, run_proxy, fake("claude_auth"), fake("claude_api"), parts, expires_in=expires_in, signals=signals
            )
        if provider == "codex":
            factory = provider_factory or CodexProvider
            return start_codex(store, cfg, run_proxy, fake("codex_auth"), fake("codex_backend"), parts, provider_factory=factory)
        assert provider == "loop", provider
        return start_kleis(store, cfg, run_proxy, fake("fake_oauth"), fake("fake_anthropic"), fake("fake_openai"), parts)

    return start


@pytest.fixture
def kleis(live_kleis: Callable[..., LiveKleis]) -> LiveKleis:
    """A live Kleis with the default parts (no account yet: `kleis.add_account()`)."""
    return live_kleis()


@pytest.fixture
def client(kleis: LiveKleis) -> Iterator[httpx.Client]:
    """httpx pointed at the live Kleis (add the key with `kleis.headers()`)."""
    with httpx.Client(base_url=kleis.url, timeout=15) as http:
        yield http


@pytest.fixture
def run_proxy(store: Store) -> Iterator[Callable[..., ProxyThread]]:
    """Start Kleis listeners with given providers: `proxy = run_proxy(config, {"claude": ClaudeProvider(config)})`."""
    started: list[ProxyThread] = []

    def start(config: Config, providers: dict[str, Provider], parts: Parts | None = None) -> ProxyThread:
        proxy = ProxyThread(store, config, providers=providers, parts=parts if parts is not None else Parts()).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


# -- Claude ------------------------------------------------------------------------------------------------------
@pytest.fixture
def claude_auth() -> Iterator[FakeOAuth]:
    """Claude's OAuth authority (its client id; token answers name the account)."""
    fake = claude_oauth().start()
    yield fake
    fake.stop()


@pytest.fixture
def claude_api(claude_auth: FakeOAuth) -> Iterator[FakeClaudeAPI]:
    """Claude's Messages API, refusing what does not pass as Claude Code, for the tokens claude_auth issued."""
    fake = FakeClaudeAPI(valid_tokens=claude_auth.issued_access).start()
    yield fake
    fake.stop()


# -- ChatGPT (Codex) ----------------------------------------------------------------------------------------
@pytest.fixture
def codex_auth() -> Iterator[FakeCodexAuth]:
    fake = FakeCodexAuth().start()
    yield fake
    fake.stop()


@pytest.fixture
def codex_backend(codex_auth: FakeCodexAuth) -> Iterator[FakeCodex]:
    """The fake Codex backend, accepting the tokens the fake auth host issued (its client-version gate on)."""
    fake = FakeCodex(valid_tokens=codex_auth.issued_access).start()
    yield fake
    fake.stop()


# -- GitHub and Copilot ---------------------------------------------------------------------------------
@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub().start()
    yield fake
    fake.stop()


@pytest.fixture
def copilot_api(github: FakeGitHub) -> Iterator[FakeCopilot]:
    fake = FakeCopilot(github).start()
    github.api_url = fake.url
    yield fake
    fake.stop()


@pytest.fixture
def copilot_config(config: Config, github: FakeGitHub, copilot_api: FakeCopilot) -> Config:
    """GitHub and the Copilot API at the fakes; the API base taken from the token's endpoints.api."""
    return config.replace(github_base=github.url, github_api_base=github.url, copilot_api_base="")


# -- the admin app ------------------------------------------------------------------------------------------
@pytest.fixture
def authority(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoginAuthority]:
    fake = LoginAuthority().start()
    monkeypatch.setattr(TestProvider, "authority", fake)
    yield fake
    fake.stop()


@pytest.fixture
def test_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Claude, Codex and Copilot replaced by the test providers (one per login kind). Their logins and refreshes
    need the `authority` fixture (a listener: an e2e test); without it they fail saying so."""
    monkeypatch.setattr(registry, "PROVIDER_CLASSES", dict(TEST_PROVIDERS))
    monkeypatch.setattr(TestProvider, "authority", None)


@pytest.fixture
def app(store: Store, config: Config, test_providers: None) -> Flask:
    from admin import create_app

    return create_app(store, config, {"TESTING": True})


@pytest.fixture
def web(app: Flask) -> FlaskClient:
    """A browser-like client that is not logged in."""
    return app.test_client()


@pytest.fixture
def admin(app: Flask) -> FlaskClient:
    """A logged-in client."""
    client = app.test_client()
    login(client)
    return client


@pytest.fixture
def api(app: Flask) -> Api:
    return Api(app.test_client())


# -- the CLI and PostgreSQL -------------------------------------------------------------------------------
@pytest.fixture
def kleis_cli(tmp_path: Path) -> KleisCli:
    """`kleis_cli("keys", "list")`: kleis.py in a subprocess on its own data dir; `kleis_cli.settings` adds KLEIS_* values."""
    return KleisCli(tmp_path / "data")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[TempPostgres]:
    try:
        server = TempPostgres()
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL is not available here: {exc}")
    yield server
    server.stop()
