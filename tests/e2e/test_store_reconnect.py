"""The store comes back: a dead connection (PostgreSQL restarted or stopped, a SQLite connection closed under Kleis)
is dropped and opened anew on its next use, reads and transactions that start on it heal, a transaction it dies in
is rolled back whole, and while the server is away connecting is retried with backoff.
Here the parts that need a listener; the rest: tests/unit/test_store_reconnect.py."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import peewee
import pytest

from core.config import Config
from store import reconnect
from store.accounts import TokenSet, upsert_account
from store.db import Store, open_store
from store.models import Account, Setting, database
from tests.support.postgres import TempPostgres


# -- PostgreSQL -----------------------------------------------------------------------------------------------
@pytest.fixture
def own_postgres() -> Iterator[TempPostgres]:
    """A server of this test's own: restarting the suite's shared one would cut the other tests' connections."""
    try:
        server = TempPostgres()
    except (FileNotFoundError, OSError) as exc:
        pytest.skip(f"PostgreSQL is not available here: {exc}")
    yield server
    server.stop()


@pytest.fixture
def pg_store(own_postgres: TempPostgres, config: Config) -> Iterator[Store]:
    store = open_store(config.replace(database_url=own_postgres.new_database()))
    yield store
    try:
        store.close()
    except peewee.DatabaseError:
        pass


def test_postgres_restart_is_survived_by_reads_and_transactions(own_postgres: TempPostgres, pg_store: Store) -> None:
    upsert_account("claude", "one", TokenSet("a", "r", time.time() + 60), pg_store.cipher)
    own_postgres.restart()
    assert Account.select().count() == 1
    own_postgres.restart()
    with database.atomic():
        Setting.insert(key="after-restart", value="1").execute()
    assert Setting.get(Setting.key == "after-restart").value == "1"


def test_postgres_stopped_fails_fast_with_backoff_and_comes_back(own_postgres: TempPostgres, pg_store: Store, caplog) -> None:
    assert Account.select().count() == 0
    own_postgres.pause()
    failures = []
    started = time.monotonic()
    for _ in range(20):
        with pytest.raises(peewee.DatabaseError) as failed:
            Account.select().count()
        failures.append(failed.value)
    assert time.monotonic() - started < 5  # no caller waits on a refused connection again and again
    assert any(reconnect.unavailable(f) for f in failures)  # within the backoff step: not even tried
    own_postgres.start()
    deadline = time.monotonic() + 10
    while True:
        try:
            assert Account.select().count() == 0
            break
        except peewee.DatabaseError:
            assert time.monotonic() < deadline, "the store did not come back within 10 s of PostgreSQL"
            time.sleep(0.05)
    assert time.monotonic() - deadline < 0 and any("reachable again" in r.getMessage() for r in caplog.records)


# -- a live Kleis under steady traffic ----------------------------------------------------------------------------
BODY = {"model": "loop/m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}


class Traffic:
    """Clients sending requests one after another until stopped; every answer (whatever its status) is counted."""

    def __init__(self, url: str, key: str, clients: int = 3) -> None:
        self.url, self.key = url, key
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        import httpx

        with httpx.Client(base_url=self.url, headers={"x-api-key": self.key}, timeout=30, trust_env=False) as client:
            while not self._stop.is_set():
                try:
                    self.statuses.append(client.post("/v1/messages", json=BODY).status_code)
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def run_for(self, seconds: float) -> None:
        """Let the traffic go on for `seconds` (the clients are what this test watches, not a timer)."""
        self._stop.wait(seconds)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def wait_for(check, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.parametrize("outage", ["restart", "stopped-30s"])
def test_under_traffic_the_store_comes_back_and_no_usage_is_lost(
    outage: str, own_postgres: TempPostgres, pg_store: Store, fake_oauth, fake_anthropic, fake_openai
) -> None:
    import httpx

    from store import keys
    from store.models import UsageEvent
    from tests.support.cli import run_kleis
    from tests.support.loop_server import spawn, stop

    access, refresh = fake_oauth.seed()
    upsert_account("loop", "steady", TokenSet(access, refresh, time.time() + 3600), pg_store.cipher)
    _, key = keys.create_key("steady")
    config = pg_store.config
    process, url = spawn(config, fake_oauth, fake_anthropic, fake_openai)
    try:
        with Traffic(url, key) as traffic:
            traffic.run_for(1.5)
            before = len(traffic.statuses)
            if outage == "restart":
                own_postgres.restart()
            else:
                own_postgres.pause()
                traffic.run_for(25)  # requests the caches carry keep being answered meanwhile
                health = httpx.get(f"{url}/healthz", timeout=5)
                assert health.status_code == 503 and health.json()["usage_waiting"] > 0  # held in memory, counted
                doctor = run_kleis(
                    config.data_dir,
                    "doctor",
                    env={
                        "KLEIS_DATABASE_URL": config.database_url,
                        "KLEIS_SECRET_KEY": config.secret_key,
                        "KLEIS_PORT": url.rsplit(":", 1)[1],
                    },
                )
                assert re.search(r"\[warn\] proxy: .*store unreachable .*; \d+ usage events waiting to be written", doctor.stdout), (
                    doctor.stdout
                )
                traffic.run_for(5)
                during = traffic.statuses[before:]
                assert len(during) > 30 and set(during) == {200}
                own_postgres.start()
            back = time.monotonic()
            wait_for(lambda: httpx.get(f"{url}/healthz", timeout=5).status_code == 200, 15, "/healthz did not come back")
            healthy_after = time.monotonic() - back
            traffic.run_for(2)
        answered = len(traffic.statuses)
        assert traffic.errors == [] and set(traffic.statuses) == {200} and answered > before
        assert wait_for(lambda: httpx.get(f"{url}/healthz", timeout=5).json().get("usage_waiting") == 0, 15, "usage kept waiting")
        database.obj.drop_connection()  # this test's own connection died with the server too
        written = wait_for(lambda: (n := UsageEvent.select().count()) == answered and n, 20, "usage rows never matched the answers")
        assert healthy_after < 10
    finally:
        stop(process)
        log = process.stderr.read() if process.stderr else ""
    assert written == answered  # none lost, none written twice (request ids are unique)
    assert UsageEvent.select(UsageEvent.request_id).distinct().count() == answered
    assert "Traceback" not in log
