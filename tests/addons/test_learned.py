"""Learned values: version strings, the in-memory values the request path reads, the store keeping the highest,
the recorder addon writing them off the loop, and the identity that says where each presented value comes from.
Here the parts that need no socket; through listeners: tests/e2e/test_learned.py."""

from __future__ import annotations

import asyncio

import pytest
from mitmproxy import hooks
from mitmproxy.test import taddons

from core import versions
from engine.follower import StoreFollower
from engine.learned import LearnedRecorder
from providers.identity import Presented, Source, configured, newest_version
from providers.learned import CODEX_CLI_VERSION, LearnedValues
from store import learned as learned_store


@pytest.mark.parametrize(
    ("candidate", "than", "expected"),
    [("0.171.0", "0.146.0", True), ("0.99.0", "0.146.0", False), ("2.1.10", "2.1.9", True), ("1.0.0", None, True)],
)
def test_versions_compare_as_numbers(candidate: str, than: str | None, expected: bool) -> None:
    assert versions.newer(candidate, than) is expected


@pytest.mark.parametrize("text", ["0.157.0-alpha.10", "latest", "1.2", "", "1.2.3.4", " 99999999.0.0"])
def test_only_plain_release_numbers_are_versions(text: str) -> None:
    assert versions.parse(text) is None and not versions.newer(text, "0.0.1")


@pytest.mark.parametrize(
    ("claimed", "reference", "ahead", "expected"),
    [
        ("2.1.350", "2.1.328", 3, True),
        ("2.3.0", "2.1.328", 3, True),
        ("2.5.0", "2.1.328", 3, False),
        ("99.0.0", "2.1.328", 3, False),
        ("2.1.999999", "2.1.328", 3, False),
        ("0.300.0", "0.171.0", 150, True),
        ("0.400.0", "0.171.0", 150, False),
        ("1.0.0", "0.171.0", 150, False),
    ],
)
def test_a_claimed_version_is_learned_only_beside_the_configured_one(claimed: str, reference: str, ahead: int, expected: bool) -> None:
    assert versions.plausible_release(claimed, reference, ahead) is expected


def test_highest_and_find() -> None:
    assert versions.highest("0.146.0", None, "junk", "0.171.0", "0.150.2") == "0.171.0"
    assert versions.find("Claude Code 2.1.224 does not support this model; version 2.1.251 or newer") == "2.1.224"


def test_learned_values_only_move_forward_and_mark_what_to_store() -> None:
    learned = LearnedValues({CODEX_CLI_VERSION: "0.150.0", "bogus": "x"})
    assert learned.values == {CODEX_CLI_VERSION: "0.150.0"}
    assert not learned.observe(CODEX_CLI_VERSION, "0.149.9") and not learned.observe(CODEX_CLI_VERSION, "9.9")
    generation = learned.generation
    assert learned.observe(CODEX_CLI_VERSION, "0.171.0") and learned.generation == generation + 1
    assert learned.take_dirty() == {CODEX_CLI_VERSION: "0.171.0"} and learned.take_dirty() == {}
    assert learned.observe(CODEX_CLI_VERSION, "0.172.0")  # learned here, not written yet
    learned.merge({CODEX_CLI_VERSION: "0.160.0", "claude.code_version": "2.1.330"})  # the store, read back
    assert learned.values == {CODEX_CLI_VERSION: "0.172.0", "claude.code_version": "2.1.330"}  # the unwritten value stays
    assert learned.take_dirty() == {CODEX_CLI_VERSION: "0.172.0"}
    learned.merge({"claude.code_version": "2.1.330"})  # written, then forgotten by the operator: the store decides
    assert learned.values == {"claude.code_version": "2.1.330"} and not learned.dirty


def test_the_store_keeps_the_highest_version_and_says_what_changed(store) -> None:
    assert learned_store.save({CODEX_CLI_VERSION: "0.171.0"}) == {CODEX_CLI_VERSION: "0.171.0"}
    assert learned_store.save({CODEX_CLI_VERSION: "0.160.0"}) == {}  # another process's older value
    assert learned_store.save({CODEX_CLI_VERSION: "0.172.0", "claude.code_version": "not-a-version"}) == {CODEX_CLI_VERSION: "0.172.0"}
    assert learned_store.load() == {CODEX_CLI_VERSION: "0.172.0"}
    assert learned_store.forget() == 1 and learned_store.load() == {}


def test_the_recorder_addon_stores_off_the_loop_and_merges_what_other_processes_learned(store) -> None:
    async def scenario() -> None:
        follower = StoreFollower(store.cipher, interval=0.05)
        follower.load_all()
        learned = LearnedValues(follower.learned)
        recorder = LearnedRecorder(learned, follower, interval=0.05)
        with taddons.context(recorder, follower) as tctx:
            tctx.master.addons.invoke_addon_sync(follower, hooks.RunningHook())
            tctx.master.addons.invoke_addon_sync(recorder, hooks.RunningHook())
            learned.observe(CODEX_CLI_VERSION, "0.171.0")
            while learned_store.load().get(CODEX_CLI_VERSION) != "0.171.0":  # written by the recorder's thread
                await asyncio.sleep(0.02)
            await asyncio.to_thread(learned_store.save, {"claude.code_version": "2.1.340"})  # another process
            while learned.get("claude.code_version") != "2.1.340":  # read back through the follower
                await asyncio.sleep(0.02)
            learned.observe("claude.required_version", "2.1.400")
            await tctx.master.addons.invoke_addon(recorder, hooks.DoneHook())  # flushes what is left
            await tctx.master.addons.invoke_addon(follower, hooks.DoneHook())
        assert recorder.written == 2

    asyncio.run(asyncio.wait_for(scenario(), 10))
    assert learned_store.load() == {CODEX_CLI_VERSION: "0.171.0", "claude.code_version": "2.1.340", "claude.required_version": "2.1.400"}


def test_a_failed_write_is_kept_for_the_next_flush(store, monkeypatch) -> None:
    def broken(values: dict) -> dict:
        raise RuntimeError("store away")

    learned = LearnedValues()
    recorder = LearnedRecorder(learned, StoreFollower(store.cipher))
    learned.observe(CODEX_CLI_VERSION, "0.171.0")
    monkeypatch.setattr(learned_store, "save", broken)
    asyncio.run(recorder.flush())
    assert learned.dirty == {CODEX_CLI_VERSION}
    monkeypatch.undo()
    asyncio.run(recorder.flush())
    assert learned_store.load() == {CODEX_CLI_VERSION: "0.171.0"} and not learned.dirty


def test_identity_values_say_where_they_come_from(config) -> None:
    default = configured(config, "codex_client_version", "Codex CLI version")
    assert default.source is Source.DEFAULT and default.setting == "KLEIS_CODEX_CLIENT_VERSION"
    assert configured(config.replace(codex_client_version="0.180.0"), "codex_client_version", "v").source is Source.SETTING
    chosen, warnings = newest_version(default, ("0.999.0", Source.LEARNED))
    assert (chosen.value, chosen.source) == ("0.999.0", Source.LEARNED)
    assert warnings and "the built-in default is older than 0.999.0 seen from a real client" in warnings[0]
    older, none = newest_version(default, ("0.100.0", Source.LEARNED), (None, Source.ADOPTED))
    assert older is default and none == ()
    assert Presented("x", "1.0.0", Source.ADOPTED).describe() == "x 1.0.0 (adopted from a provider's error)"


def test_doctor_shows_each_providers_identity_and_where_each_value_comes_from(store, config) -> None:
    from cli.doctor import identity_checks

    learned_store.save({CODEX_CLI_VERSION: "0.180.0", "claude.required_version": "2.1.400"})
    lines = list(identity_checks(config.replace(copilot_api_version="2026-09-01")))
    assert ("ok", "claude identity", "Claude Code version 2.1.400 (adopted from a provider's error); "
            "extra anthropic-beta (none) (built-in default)") in lines  # fmt: skip
    assert (
        "ok",
        "codex identity",
        "Codex CLI version 0.180.0 (learned from a real client); originator codex_cli_rs (built-in default)",
    ) in lines
    [copilot] = [detail for _, name, detail in lines if name == "copilot identity"]
    assert "Editor-Version vscode/1.126.0 (built-in default)" in copilot
    assert "X-GitHub-Api-Version 2026-09-01 (from the setting KLEIS_COPILOT_API_VERSION)" in copilot
    warnings = [(name, detail) for level, name, detail in lines if level == "warn"]
    assert [name for name, _ in warnings] == ["claude identity", "codex identity"]
    assert warnings[0][1].startswith("Claude Code version: the built-in default is older than 2.1.400 required by the provider")
    assert warnings[1][1].startswith("Codex CLI version: the built-in default is older than 0.180.0 seen from a real client")
