"""The real coding agents — Claude Code, Codex CLI, OpenCode — set up as the README says, against `kleis.py serve`.

Each agent is the pinned npm release `.ci/agents` installs; upstreams are loopback fakes: a Claude API that makes
the agent run one shell command and then answers with its output (so a whole turn crosses Kleis twice, the tool
call restored in the stream on the way back), and a ChatGPT Codex backend doing the same with `exec_command`.
Skipped where npm could not install the agents.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from providers.codex import login as codex_login
from store import keys
from store.accounts import TokenSet, upsert_account
from store.models import Account, UsageEvent
from tests.fakes.agent_claude import COMMAND, AgentClaude
from tests.fakes.agent_codex import CALL_ID, AgentCodex
from tests.fakes.claude import ACCOUNT, claude_oauth
from tests.fakes.codex_auth import FakeCodexAuth
from tests.support.cli import START_LINE, start_serve, stop
from tests.support.env import ROOT
from tests.support.learned import stored_learned

AGENTS_DIR = ROOT / ".venv" / "agents"
AGENTS = AGENTS_DIR / "node_modules" / ".bin"
MARKER = COMMAND.split()[-1]
RUN_TIMEOUT = 90  # seconds per agent run; a hung agent's whole process group is killed
CODEX_CLI_VERSION = json.loads((ROOT / "tests" / "agents" / "package.json").read_text())["dependencies"]["@openai/codex"]


def _agents_missing() -> str | None:
    if not (AGENTS_DIR / ".installed").exists():  # written only once npm finished installing all of them
        return "the agents are not installed (.ci/agents installs them with npm; see its output)"
    missing = [name for name in ("claude", "codex", "opencode") if not (AGENTS / name).exists()]
    return f"{', '.join(missing)} missing from {AGENTS}" if missing else None


@pytest.fixture(autouse=True)
def _installed() -> None:
    reason = _agents_missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"real-agent tests cannot run in CI: {reason}")
    pytest.skip(reason)


def agent(name: str) -> str:
    return str(AGENTS / name)


@dataclasses.dataclass
class Served:
    url: str
    key: str
    claude: AgentClaude
    codex: AgentCodex
    home: Path


@pytest.fixture
def served(tmp_path: Path, config, store) -> Iterator[Served]:
    with contextlib.ExitStack() as cleanup:

        def started(fake):
            fake.start()
            cleanup.callback(fake.stop)
            return fake

        claude_auth = started(claude_oauth())
        claude = started(AgentClaude(valid_tokens=claude_auth.issued_access))
        codex_auth = started(FakeCodexAuth())
        codex = started(AgentCodex(valid_tokens=codex_auth.issued_access))
        env = {
            "KLEIS_CLAUDE_API_BASE": claude.url,
            "KLEIS_CLAUDE_AUTH_BASE": claude_auth.url,
            "KLEIS_CODEX_API_BASE": codex.base,
            "KLEIS_CODEX_AUTH_BASE": codex_auth.url,
            "KLEIS_SECRET_KEY": config.secret_key,
        }
        cfg = config.replace(
            claude_api_base=claude.url, claude_auth_base=claude_auth.url, codex_api_base=codex.base, codex_auth_base=codex_auth.url
        )
        access, refresh = claude_auth.seed()
        upsert_account(
            "claude", ACCOUNT["uuid"], TokenSet(access, refresh, time.time() + 3600), store.cipher, email=ACCOUNT["email_address"]
        )
        login = codex_login.start_login(store, cfg)
        codex_login.complete_login(store, cfg, login.flow_id, {"callback_url": codex_auth.consent(login.authorize_url)})
        _, key = keys.create_key("agents")
        process, lines = start_serve(config.data_dir, env)
        stopped: list[int] = []
        cleanup.callback(lambda: stopped.append(stop(process, signal.SIGTERM)))
        url = START_LINE.match(lines[-1]).group(1)
        home = tmp_path / "home"
        (home / "work").mkdir(parents=True)
        yield Served(url, key, claude, codex, home)
    assert stopped == [0]  # Kleis shut down cleanly after the agents


CLIENT_ENV_PREFIXES = ("KLEIS_", "ANTHROPIC_", "CLAUDE_", "OPENAI_", "OPENCODE_", "CODEX_", "NODE_OPTIONS", "NPM_CONFIG_")
PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def run_agent(served: Served, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """An agent in a throwaway home (no user config, no update checks), from a scratch working directory, with
    nothing of the developer's own agent setup or proxies in its environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(CLIENT_ENV_PREFIXES) and k not in PROXY_ENV}
    home = served.home
    base.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_STATE_HOME=str(home / ".local/state"),
        NO_COLOR="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    base.update(env)
    process = subprocess.Popen(
        argv,
        cwd=home / "work",
        env=base,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the npm wrapper, the native binary and the tools it started
        stdout, stderr = process.communicate()
        raise AssertionError(f"{Path(argv[0]).name} did not finish in {RUN_TIMEOUT}s: {stderr[-2000:]}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # nothing it started outlives the test
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def recorded_statuses(expected: int, timeout: float = 10.0) -> list[tuple[int, str]]:
    """The usage events `kleis.py serve` wrote, once there are `expected` of them (its writer flushes in batches)."""
    deadline = time.time() + timeout
    while True:
        events = [(event.status, event.error_type) for event in UsageEvent.select().order_by(UsageEvent.id)]
        if len(events) >= expected or time.time() > deadline:
            time.sleep(0.3)  # and nothing more arrives
            return [(event.status, event.error_type) for event in UsageEvent.select().order_by(UsageEvent.id)]
        time.sleep(0.1)


def run_claude_code(served: Served, *args: str) -> subprocess.CompletedProcess:
    """`claude -p …` set up as the README says: the base URL and the key as a Bearer token."""
    return run_agent(
        served,
        [agent("claude"), "-p", *args],
        {
            "ANTHROPIC_BASE_URL": served.url,
            "ANTHROPIC_AUTH_TOKEN": served.key,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
        },
    )


@pytest.mark.timeout(240)
def test_claude_code_runs_a_tool_through_kleis(served: Served) -> None:
    done = run_claude_code(served, "run the marker command", "--model", "claude-sonnet-4-5", "--allowedTools", "Bash")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Tool said: {MARKER}" in done.stdout  # the tool ran on this machine and its output went back upstream
    turns = served.claude.received("/v1/messages")
    assert len(turns) == 2
    first, second = turns[0], turns[1]
    assert first.headers["authorization"].startswith("Bearer sk-ant-oat") and served.key not in json.dumps(first.headers)
    assert first.headers["user-agent"].startswith("claude-cli/") and "oauth-2025-04-20" in first.headers["anthropic-beta"]
    assert any(tool["name"] == "Bash" for tool in first.json["tools"])
    [result] = [part for part in second.json["messages"][-1]["content"] if part.get("type") == "tool_result"]
    assert MARKER in json.dumps(result["content"]) and result["tool_use_id"] == "toolu_shell_1"
    assert recorded_statuses(2) == [(200, ""), (200, "")]  # its `HEAD /` probe is answered, not an error


@pytest.mark.timeout(240)
def test_claude_code_on_a_codex_model_runs_a_tool_through_kleis(served: Served) -> None:
    """Claude Code speaks Anthropic Messages; gpt-5.4 is served by the ChatGPT plan: Kleis translates both ways."""
    served.codex.plan.reasoning = ("Planning the command.",)
    done = run_claude_code(served, "run the marker command", "--model", "gpt-5.4", "--allowedTools", "Bash")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Tool said: {MARKER}" in done.stdout  # the tool ran here and its output went back to the Codex backend
    turns = served.codex.received(f"{served.codex.prefix}/responses")
    assert len(turns) == 2
    first, second = turns[0].json, turns[1].json
    assert first["model"] == "gpt-5.4" and any(tool["name"] == "Bash" for tool in first["tools"])
    assert "x-anthropic-billing-header" not in json.dumps(first)  # Claude Code's attestation is Anthropic's alone
    assert turns[0].headers["chatgpt-account-id"] == "acc-1111-aaaa" and served.key not in json.dumps(turns[0].headers)
    [output] = [item for item in second["input"] if item.get("type") == "function_call_output"]
    assert output["call_id"] == CALL_ID and MARKER in json.dumps(output["output"])
    # Claude Code asks for thinking: the model's reasoning reached it as a thinking block Kleis signed, and came back
    # (the fake backend checks the blob is its own, for this account)
    assert first["reasoning"]["effort"] and [item["type"] for item in second["input"]][-3:] == [
        "reasoning",
        "function_call",
        "function_call_output",
    ]
    [carried] = [item for item in second["input"] if item["type"] == "reasoning"]
    assert served.codex.issued[carried["encrypted_content"]] == "acc-1111-aaaa" and carried["summary"][0]["text"] == "Planning the command."
    assert any(item.get("type") == "function_call" and item.get("call_id") == CALL_ID for item in second["input"])
    assert served.claude.received("/v1/messages") == [] or all(
        not turn.json.get("tools") for turn in served.claude.received("/v1/messages")
    )  # at most Claude Code's own background calls on its small model went to Claude


@pytest.mark.timeout(240)
def test_claude_code_shows_a_revoked_key_at_once(served: Served) -> None:
    """Claude Code retries a 401 for minutes (it takes it for an expired login) unless told not to."""
    keys.revoke_key(keys.find_key(served.key[:11]).id)
    started = time.time()
    done = run_claude_code(served, "hello", "--model", "claude-sonnet-4-5")
    assert done.returncode != 0 and "this Kleis key has been revoked" in done.stdout + done.stderr
    assert time.time() - started < 30 and served.claude.received("/v1/messages") == []
    assert recorded_statuses(1) == [(401, "invalid_api_key")]  # one refused request, not a retry loop


@pytest.mark.timeout(240)
def test_claude_code_shows_at_once_that_no_account_can_serve(served: Served, store) -> None:
    """A disabled (or logged-out) account is not a passing overload: Claude Code must not retry it for minutes."""
    from store.accounts import set_status

    [account] = [row for row in Account.select() if row.provider == "claude"]
    set_status(account.id, "disabled", "by the operator")
    deadline = time.time() + 5
    while httpx.get(f"{served.url}/healthz", timeout=5).json()["usable_accounts"].get("claude") and time.time() < deadline:
        time.sleep(0.1)
    started = time.time()
    done = run_claude_code(served, "hello", "--model", "claude-sonnet-4-5")
    assert done.returncode != 0 and "no usable Claude account" in done.stdout + done.stderr
    assert time.time() - started < 30 and served.claude.received("/v1/messages") == []
    assert recorded_statuses(1) == [(503, "no_account")]


def codex_cli_env(served: Served, model: str) -> dict[str, str]:
    """Codex CLI set up as the README says (a `kleis` model provider on the Responses wire), in the test's home."""
    codex_home = served.home / ".codex"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(
        f'model = "{model}"\nmodel_provider = "kleis"\n\n[model_providers.kleis]\nname = "Kleis"\n'
        f'base_url = "{served.url}/v1"\nenv_key = "KLEIS_API_KEY"\nwire_api = "responses"\n'
    )
    return {"CODEX_HOME": str(codex_home), "KLEIS_API_KEY": served.key}


@pytest.mark.timeout(240)
def test_codex_cli_with_a_kleis_model_provider_runs_a_command(served: Served) -> None:
    """Codex CLI reaches the backend as itself: its own version (which the backend's gate on gpt-6-sol reads), user-agent
    and originator, and Kleis learns that version for the clients it presents as Codex CLI."""
    codex, env = agent("codex"), codex_cli_env(served, "gpt-5.4")
    argv = [codex, "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", "run the marker command"]
    done = run_agent(served, argv, env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Tool said: {MARKER}" in done.stdout  # the command ran here and its output went back upstream
    turns = served.codex.received(f"{served.codex.prefix}/responses")
    assert len(turns) == 2
    first, second = turns[0].json, turns[1].json
    assert first["model"] == "gpt-5.4" and first["instructions"] == "" and first["store"] is False and first["stream"] is True
    seen = turns[0].headers
    assert seen["chatgpt-account-id"] == "acc-1111-aaaa" and seen["originator"] == "codex_exec"  # `codex exec`'s own
    assert seen["version"] == CODEX_CLI_VERSION and seen["user-agent"].startswith(f"codex_exec/{CODEX_CLI_VERSION} (")
    assert served.key not in json.dumps(turns[0].headers) and served.key not in json.dumps(turns[1].headers)
    [output] = [item for item in second["input"] if item.get("type") == "function_call_output"]
    assert output["call_id"] == CALL_ID and MARKER in json.dumps(output["output"])
    assert any(item.get("type") == "function_call" and item.get("call_id") == CALL_ID for item in second["input"])
    assert recorded_statuses(2) == [(200, ""), (200, "")]
    # gpt-6-sol: the backend's gate (0.155.0 or later) reads the version, and Codex CLI's own passes it
    answered = run_agent(served, [codex, "exec", "--skip-git-repo-check", "-m", "gpt-6-sol", "say hi"], env)
    assert answered.returncode == 0 and "Hi there" in answered.stdout, answered.stderr[-2000:]
    latest = served.codex.last(f"{served.codex.prefix}/responses")
    assert latest.json["model"] == "gpt-6-sol" and latest.headers["version"] == CODEX_CLI_VERSION
    assert stored_learned("codex.cli_version", timeout=10) == CODEX_CLI_VERSION  # what Kleis now presents for other clients


@pytest.mark.timeout(240)
def test_codex_cli_on_a_claude_model_runs_a_command(served: Served) -> None:
    """Codex CLI speaks Responses; claude-sonnet-4-5 is served by the Claude plan: Kleis translates both ways, and
    presents the translated traffic as it presents any third-party client to Claude."""
    served.claude.thinking, served.claude.check_thinking = ("Planning the command.",), True  # as the real API does
    argv = [agent("codex"), "exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", "run the marker command"]
    done = run_agent(served, argv, codex_cli_env(served, "claude-sonnet-4-5"))
    turns = served.claude.received("/v1/messages")
    sent_tools = [tool["name"] for tool in turns[0].json.get("tools") or []] if turns else []
    assert done.returncode == 0, (done.stderr[-2000:], sent_tools)
    said = done.stdout[done.stdout.find("Tool said:") :]
    assert "Tool said:" in done.stdout and MARKER in said, (done.stdout[-2000:], sent_tools)  # Codex CLI's output, quoted back
    assert len(turns) == 2 and served.codex.received(f"{served.codex.prefix}/responses") == []
    first, second = turns[0], turns[1]
    assert first.headers["authorization"].startswith("Bearer sk-ant-oat") and served.key not in json.dumps(first.headers)
    assert first.json["system"][0]["text"].startswith("You are Claude Code")  # presented as any third-party client
    [result] = [part for part in second.json["messages"][-1]["content"] if part.get("type") == "tool_result"]
    assert result["tool_use_id"] == "toolu_shell_1" and MARKER in json.dumps(result["content"])
    # Codex CLI sends no reasoning for a model it has no metadata for (openai/codex#30697): no thinking to carry here
    # (the openai SDK's carry is in tests/e2e/test_reasoning_carry.py); the fake would refuse a tool turn that lost it
    assert "thinking" not in first.json or second.json["messages"][1]["content"][0]["type"] == "thinking"


@pytest.mark.timeout(360)
def test_opencode_with_only_the_models_url_and_a_key(served: Served) -> None:
    opencode = agent("opencode")
    env = {"OPENCODE_MODELS_URL": f"{served.url}/models", "KLEIS_API_KEY": served.key, "OPENCODE_DISABLE_AUTOUPDATE": "1"}
    listed = run_agent(served, [opencode, "models", "kleis"], env)
    if listed.returncode != 0 and "Provider not found: kleis" in listed.stderr:
        # OpenCode answers from its bundled models.dev snapshot while it fetches OPENCODE_MODELS_URL in the background,
        # and caches what it fetched for the next run; on a busy machine the first run can lose that race.
        listed = run_agent(served, [opencode, "models", "kleis"], env)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert {"kleis/claude/claude-sonnet-4-5", "kleis/codex/gpt-5.4"} <= set(listed.stdout.split())
    done = run_agent(served, [opencode, "run", "-m", "kleis/claude/claude-sonnet-4-5", "run the marker command"], env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"Tool said: {MARKER}" in done.stdout
    with_tools = [turn for turn in served.claude.received("/v1/messages") if turn.json.get("tools")]
    assert len(with_tools) == 2
    # OpenCode's lower-case tools reach Claude under Claude Code's names, and the call came back as its own `bash`
    assert "Bash" in {tool["name"] for tool in with_tools[0].json["tools"]}
    answered = run_agent(served, [opencode, "run", "-m", "kleis/codex/gpt-5.4", "say hi"], env)
    assert answered.returncode == 0 and "Hi there" in answered.stdout, answered.stderr[-2000:]
    assert served.codex.received(f"{served.codex.prefix}/responses")
    assert httpx.get(f"{served.url}/healthz", timeout=5).json()["usable_accounts"] == {"claude": 1, "codex": 1}
