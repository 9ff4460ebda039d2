"""Learned values: version strings, the in-memory values the request path reads, the store keeping the highest,
the recorder addon writing them off the loop, and the identity that says where each presented value comes from.
Here the parts that need a listener; the rest: tests/addons/test_learned.py."""

from __future__ import annotations

from providers.learned import CODEX_CLI_VERSION
from store import learned as learned_store


def test_doctor_forgets_learned_values(store, config) -> None:
    from tests.support.cli import run_kleis

    learned_store.save({CODEX_CLI_VERSION: "0.172.0", "claude.code_version": "2.1.330"})
    env = {"KLEIS_SECRET_KEY": config.secret_key}
    one = run_kleis(config.data_dir, "doctor", "--forget-learned", CODEX_CLI_VERSION, env=env)
    assert one.returncode == 0 and "forgot the learned value" in one.stdout and learned_store.load() == {"claude.code_version": "2.1.330"}
    everything = run_kleis(config.data_dir, "doctor", "--forget-learned", env=env)
    assert everything.returncode == 0 and learned_store.load() == {}
    assert "nothing learned" in run_kleis(config.data_dir, "doctor", "--forget-learned", "x", env=env).stdout
