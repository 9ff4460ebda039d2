"""Importing a GitHub token for Copilot: Copilot's apps.json/hosts.json, OpenCode's auth.json, a bare token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.exceptions import InvalidInput, ReauthRequired
from providers.copilot import login
from store.models import Account
from tests.fakes.github import OPENCODE_CLIENT_ID, VSCODE_CLIENT_ID
from tests.support.accounts import account_view


def write(tmp_path: Path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def test_apps_json_prefers_the_configured_client_id(store, copilot_config, github, tmp_path) -> None:
    token = github.seed_github_token()
    other = github.seed_github_token(client_id="Iv23other")
    path = write(
        tmp_path,
        "apps.json",
        {
            "github.com:Iv23other": {"user": "octocat", "oauth_token": other, "githubAppId": "Iv23other"},
            f"github.com:{VSCODE_CLIENT_ID}": {"user": "octocat", "oauth_token": token, "githubAppId": VSCODE_CLIENT_ID},
            "acme.ghe.com:Iv1.x": {"user": "someone", "oauth_token": "gho_enterprise"},
        },
    )
    result = login.import_credentials(store, copilot_config, path=path)
    account = account_view(store, result.account_id)
    assert result.created and account.refresh_token == token and account.metadata["mode"] == "exchange"
    assert Account.get_by_id(account.id).last_refresh_result == "import ok"


def test_hosts_json(store, copilot_config, github, tmp_path) -> None:
    token = github.seed_github_token()
    path = write(tmp_path, "hosts.json", {"github.com": {"user": "octocat", "oauth_token": token}})
    account = account_view(store, login.import_credentials(store, copilot_config, path=path).account_id)
    assert account.refresh_token == token and account.label == "octocat"


@pytest.mark.parametrize("old_format", [False, True])
def test_opencode_auth_json(store, copilot_config, github, tmp_path, old_format: bool) -> None:
    token = github.seed_github_token()
    entry = {
        "type": "oauth",
        "refresh": token,
        "access": "tid=old-copilot-token;exp=1" if old_format else token,
        "expires": 1 if old_format else 0,
    }
    path = write(tmp_path, "auth.json", {"anthropic": {"type": "api", "key": "sk-ant-x"}, "github-copilot": entry})
    account = account_view(store, login.import_credentials(store, copilot_config, path=path).account_id)
    assert account.refresh_token == token and account.access_token.startswith("tid=") and account.access_token != entry["access"]


def test_opencode_own_app_token_imports_in_direct_mode(store, copilot_config, github, tmp_path) -> None:
    token = github.seed_github_token(client_id=OPENCODE_CLIENT_ID)
    path = write(tmp_path, "auth.json", {"github-copilot": {"type": "oauth", "refresh": token, "access": token, "expires": 0}})
    result = login.import_credentials(store, copilot_config, path=path)
    account = account_view(store, result.account_id)
    assert account.metadata["mode"] == "direct" and account.access_token == token and "direct mode" in result.message


def test_github_token_argument_and_reimport_updates_the_row(store, copilot_config, github) -> None:
    first = login.import_credentials(store, copilot_config, github_token=github.seed_github_token())
    newer = github.seed_github_token()
    second = login.import_credentials(store, copilot_config, github_token=f"  {newer}\n")
    assert first.account_id == second.account_id and not second.created
    assert account_view(store, second.account_id).refresh_token == newer


def test_identity_falls_back_to_the_file_login_when_user_is_unavailable(store, copilot_config, github, tmp_path) -> None:
    from tests.fakes.base import Reply

    token = github.seed_github_token()
    github.enqueue("GET", "/user", Reply(403, {"message": "Resource not accessible"}))
    path = write(tmp_path, "hosts.json", {"github.com": {"user": "octocat", "oauth_token": token}})
    account = account_view(store, login.import_credentials(store, copilot_config, path=path).account_id)
    assert account.identity.endswith("/login:octocat")


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("missing.json", None, "no file at"),
        ("broken.json", "{not json", "not a readable JSON file"),
        ("list.json", [1, 2], "not a JSON object"),
        ("other.json", {"anthropic": {"type": "oauth", "refresh": "x"}}, "no oauth_token entries"),
        (
            "apps.json",
            {"acme.ghe.com:Iv1.x": {"user": "u", "oauth_token": "gho_abcdefabcdefabcdef"}},
            "no Copilot login for github.com (it has: acme.ghe.com)",
        ),
        ("hosts.json", {"github.com": {"user": "u", "oauth_token": ""}}, "holds no GitHub token"),
        ("hosts.json", {"github.com": {"user": "u", "oauth_token": "gho_with space"}}, "does not look like a GitHub token"),
        ("auth.json", {"github-copilot": {"type": "api", "key": "x"}}, "not an OAuth login"),
        ("auth.json", {"github-copilot": {"type": "oauth", "refresh": "tid=abc;exp=1", "access": "x"}}, "short-lived Copilot token"),
        (
            "auth.json",
            {"github-copilot": {"type": "oauth", "refresh": "gho_x", "enterpriseUrl": "https://acme.ghe.com"}},
            "KLEIS_GITHUB_DOMAIN=acme.ghe.com",
        ),
    ],
)
def test_bad_files_import_nothing(store, copilot_config, github, tmp_path, name: str, content: object, fragment: str) -> None:
    path = str(tmp_path / name) if content is None else write(tmp_path, name, content)
    with pytest.raises(InvalidInput) as info:
        login.import_credentials(store, copilot_config, path=path)
    assert fragment in str(info.value)
    assert Account.select().count() == 0 and github.received() == []


def test_a_token_github_refuses_imports_nothing(store, copilot_config, github) -> None:
    with pytest.raises(ReauthRequired, match="401") as info:
        login.import_credentials(store, copilot_config, github_token="gho_" + "0" * 36)
    assert "gho_" + "0" * 36 not in str(info.value) and Account.select().count() == 0


def test_either_a_file_or_a_token(store, copilot_config, tmp_path) -> None:
    with pytest.raises(InvalidInput, match="--file PATH or --github-token TOKEN"):
        login.import_credentials(store, copilot_config)
    with pytest.raises(InvalidInput, match="not both"):
        login.import_credentials(store, copilot_config, path="x", github_token="y")


def test_enterprise_files_select_the_enterprise_host(store, copilot_config, github, tmp_path) -> None:
    enterprise = copilot_config.replace(github_domain="acme.ghe.com")  # hosts stay at the fakes
    token = github.seed_github_token()
    apps = write(
        tmp_path,
        "apps.json",
        {
            "github.com:Iv1.b507a08c87ecfe98": {"user": "public", "oauth_token": github.seed_github_token()},
            "acme.ghe.com:Iv1.b507a08c87ecfe98": {"user": "octocat", "oauth_token": token},
        },
    )
    assert account_view(store, login.import_credentials(store, enterprise, path=apps).account_id).refresh_token == token
    opencode = write(
        tmp_path,
        "auth.json",
        {"github-copilot": {"type": "oauth", "refresh": token, "access": token, "expires": 0, "enterpriseUrl": "acme.ghe.com"}},
    )
    assert login.import_credentials(store, enterprise, path=opencode).status == "done"
    public = write(tmp_path, "public.json", {"github-copilot": {"type": "oauth", "refresh": token, "access": token, "expires": 0}})
    with pytest.raises(InvalidInput, match="for github.com, but KLEIS_GITHUB_DOMAIN is acme.ghe.com"):
        login.import_credentials(store, enterprise, path=public)
