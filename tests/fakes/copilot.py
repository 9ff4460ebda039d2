"""A fake Copilot API: /chat/completions and /responses (FakeOpenAI), /v1/messages (FakeAnthropic), /models."""

# Like the real one it refuses a Copilot token without Editor-Version ("IDE auth") and tokens that are stale
# or unknown; which tokens live is decided by the fake GitHub that issued them. It answers 466 "client not supported"
# to an editor profile or API version it retired, and refuses a Messages tool's `eager_input_streaming`.

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.anthropic import FakeAnthropic, anthropic_error
from tests.fakes.base import Recorded, Reply, Stream
from tests.fakes.github import FakeGitHub
from tests.fakes.openai import FakeOpenAI

MISSING_EDITOR_VERSION = "bad request: missing Editor-Version header for IDE auth"
# The 466 body copilot-api users saw in February 2026 (ericc-ch/copilot-api#191).
RETIRED = "bad request: the specified API version is no longer supported. You may need to update your client to a newer version.\n"


def version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.rpartition("/")[2].split("."))
    except ValueError:
        return (0,)


def model_item(
    model_id: str, endpoints: list[str], *, tools: bool | None = True, limits: bool = True, policy: str = "enabled", vendor: str = "OpenAI"
) -> dict[str, Any]:
    supports: dict[str, Any] = {"streaming": True, "vision": True}
    if tools is not None:
        supports["tool_calls"] = tools
    item: dict[str, Any] = {
        "id": model_id,
        "name": model_id.upper(),
        "version": f"{model_id}-2025-01-01",
        "object": "model",
        "vendor": vendor,
        "model_picker_enabled": True,
        "preview": False,
        "supported_endpoints": endpoints,
        "policy": {"state": policy},
        "capabilities": {"family": model_id, "type": "chat", "tokenizer": "o200k_base", "supports": supports},
    }
    if limits:
        item["capabilities"]["limits"] = {"max_context_window_tokens": 200000, "max_output_tokens": 32000, "max_prompt_tokens": 128000}
    return item


DEFAULT_MODELS = [
    model_item("gpt-4.1", ["/chat/completions"]),
    model_item("gpt-5-mini", ["/chat/completions", "/responses"]),
    model_item("gpt-5.1-codex", ["/responses"]),
    model_item("claude-sonnet-4.5", ["/chat/completions", "/v1/messages"], vendor="Anthropic"),
    model_item("o3", ["/chat/completions"], policy="disabled"),
    model_item("gpt-4o-mini", ["/chat/completions"], tools=False),
    model_item("text-embedding-3-small", ["/embeddings"], tools=None, limits=False),
]


def copilot_error(status: int, message: str, code: str) -> Reply:
    return Reply(status, {"error": {"message": message, "code": code}})


class FakeCopilot(FakeOpenAI):
    def __init__(self, github: FakeGitHub) -> None:
        super().__init__(valid_tokens=github.api_tokens, prefix="")
        self.github = github
        self.models_list = copy.deepcopy(DEFAULT_MODELS)
        self.oldest_plugin = "0.40.0"  # Copilot Chat versions below this one are retired (466)
        self.oldest_api_version = "2025-05-01"  # X-GitHub-Api-Version values before this one are retired (466)
        self.anthropic = FakeAnthropic(valid_tokens=github.api_tokens)  # its handlers only; never started
        self.route("POST", "/v1/messages", self.messages)
        self.route("POST", "/v1/messages/count_tokens", self.count_tokens)
        self.route("GET", "/models", self.models)

    def copilot_refusal(self, request: Recorded) -> Reply | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return copilot_error(401, "unauthorized: no bearer token", "unauthorized")
        if token not in self.github.api_tokens:
            stale = token.startswith("tid=")
            return copilot_error(401, "unauthorized: token expired" if stale else "unauthorized: unknown token", "unauthorized")
        if token.startswith("tid=") and not request.headers.get("editor-version"):
            return copilot_error(400, MISSING_EDITOR_VERSION, "bad_request")
        return self.retired(request)

    def retired(self, request: Recorded) -> Reply | None:
        plugin = request.headers.get("editor-plugin-version")
        api_version = request.headers.get("x-github-api-version")
        if (plugin and version_tuple(plugin) < version_tuple(self.oldest_plugin)) or (
            api_version and api_version < self.oldest_api_version
        ):
            return Reply(466, {"error": {"message": RETIRED, "type": "error"}})
        return None

    def eager_streaming_refused(self, request: Recorded) -> Reply | None:
        for index, tool in enumerate(request.json.get("tools") or [] if isinstance(request.json, dict) else []):
            if isinstance(tool, dict) and "eager_input_streaming" in tool:
                return anthropic_error(
                    400, "invalid_request_error", f"tools.{index}.custom.eager_input_streaming: Extra inputs are not permitted"
                )
        return None

    def wrong_endpoint(self, request: Recorded) -> Reply | None:
        """A listed model on an endpoint its supported_endpoints lacks: Copilot's 400 (ericc-ch/copilot-api#208)."""
        model = request.json.get("model") if isinstance(request.json, dict) else None
        endpoint = request.path.split("?")[0]
        item = next((m for m in self.models_list if m["id"] == model), None)
        if item is None or endpoint in item["supported_endpoints"]:
            return None
        return copilot_error(400, f'model "{model}" is not accessible via the {endpoint} endpoint', "unsupported_api_for_model")

    def _check(self, request: Recorded) -> Reply | None:
        return self.copilot_refusal(request) or self.wrong_endpoint(request) or super()._check(request)

    def messages(self, request: Recorded) -> Reply | Stream:
        return (
            self.copilot_refusal(request)
            or self.wrong_endpoint(request)
            or self.eager_streaming_refused(request)
            or self.anthropic.messages(request)
        )

    def count_tokens(self, request: Recorded) -> Reply:
        return self.copilot_refusal(request) or self.anthropic.count_tokens(request)

    def models(self, request: Recorded) -> Reply:
        return self.copilot_refusal(request) or Reply(200, {"object": "list", "data": copy.deepcopy(self.models_list)})
