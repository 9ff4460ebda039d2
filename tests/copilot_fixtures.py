"""Fixtures for the Copilot tests: a fake GitHub, a fake Copilot API, and a configuration pointing at both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.config import Config
from store.accounts import AccountView, load_views
from store.db import Store
from tests.fakes.copilot import FakeCopilot
from tests.fakes.github import FakeGitHub


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


def account_view(store: Store, account_id: int) -> AccountView:
    return next(view for view in load_views(store.cipher) if view.id == account_id)
