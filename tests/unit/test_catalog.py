"""The model registry: models.dev fetch/TTL/fallbacks, the kleis entry, /models/api.json, /v1/models, resolution.
Here the parts that need no socket; through listeners: tests/e2e/test_catalog.py."""

from __future__ import annotations

import json

import pytest

from core.exceptions import ConfigError
from providers.catalog import load_custom_models
from providers.catalog_builtin import BUILTIN_REGISTRY
from tests.support.models_dev_schema import provider_errors


def test_custom_models(tmp_path, config) -> None:
    path = tmp_path / "custom.json"
    path.write_text(
        json.dumps({"models": {"claude/claude-private-1": {"name": "Private", "limit": {"context": 1000000, "output": 64000}}}})
    )
    custom = load_custom_models(str(path))
    assert (
        custom["claude/claude-private-1"]["limit"]["context"] == 1000000 and custom["claude/claude-private-1"]["id"] == "claude-private-1"
    )
    for bad, fragment in [
        ("{", "not valid JSON"),
        ('{"models": {"mistral/x": {}}}', "must be claude/"),
        ('{"models": {"codex/x": {"colour": 1}}}', "does not know: colour"),
    ]:
        path.write_text(bad)
        with pytest.raises(ConfigError, match=fragment):
            load_custom_models(str(path))
    with pytest.raises(ConfigError, match="cannot read"):
        load_custom_models(str(tmp_path / "missing.json"))


def test_the_builtin_offline_list_is_models_dev_valid() -> None:
    for provider_id, entry in BUILTIN_REGISTRY.items():
        assert provider_errors(entry) == [], provider_id
