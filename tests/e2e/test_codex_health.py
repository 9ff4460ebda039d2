"""Errors a Codex stream carries inside a 200: recorded in usage, cooling the account, failing over when possible.
Here the parts that need a listener; the rest: tests/unit/test_codex_health.py."""

from __future__ import annotations

import dataclasses
import time

import openai
import pytest

from addons.services import Parts
from engine.usage_recorder import UsageRecorder
from providers.codex import CodexProvider, login
from store import keys
from store.models import Account, UsageEvent
from tests.fakes.base import Stream
from tests.fakes.codex import FakeCodex
from tests.fakes.codex_auth import ChatGPTAccount, FakeCodexAuth

LIMIT = {"type": "usage_limit_reached", "code": "usage_limit_reached", "message": "You have hit your usage limit", "plan_type": "plus"}


class AccountAwareCodex(FakeCodex):
    """The stream of one ChatGPT account carries an error; other accounts are served normally."""

    failing_account: str | None = None
    linger = 0.0  # > 0: the failing stream stays open this long after its error (the client hangs up first)

    def responses(self, request):
        if request.headers.get("chatgpt-account-id") == self.failing_account:
            self.plan.error = {**LIMIT, "resets_at": int(time.time()) + 1800}
            try:
                answer = super().responses(request)
            finally:
                self.plan.error = None
            if self.linger and isinstance(answer, Stream):
                answer.events.append(b": still here\n\n")
                answer.pauses[len(answer.events) - 1] = self.linger
            return answer
        return super().responses(request)


@pytest.fixture
def setup(store, config, run_proxy):
    auth = FakeCodexAuth().start()
    codex = AccountAwareCodex(valid_tokens=auth.issued_access).start()
    cfg = config.replace(codex_api_base=codex.base, codex_auth_base=auth.url)
    ids = []
    for account in (ChatGPTAccount(), ChatGPTAccount(account_id="acc-2222-bbbb", user_id="user-bob", email="bob@example.test")):
        auth.account = account
        start = login.start_login(store, cfg)
        ids.append(login.complete_login(store, cfg, start.flow_id, {"callback_url": auth.consent(start.authorize_url)}).account_id)
    codex.failing_account = "acc-1111-aaaa"  # the first account (the primary) is out of quota
    recorder = UsageRecorder(interval=0.05)
    proxy = run_proxy(cfg, {"codex": CodexProvider(cfg)}, parts=Parts(health=True, usage=recorder))
    _, key = keys.create_key("codex")
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=key, max_retries=0, timeout=20)
    yield dataclasses.make_dataclass("S", ["client", "codex", "ids"])(client, codex, ids)
    codex.stop()
    auth.stop()


def wait_events(count: int) -> list[UsageEvent]:
    deadline = time.time() + 5
    while UsageEvent.select().count() < count and time.time() < deadline:
        time.sleep(0.02)
    return list(UsageEvent.select().order_by(UsageEvent.id))


def test_a_non_streaming_request_fails_over_past_an_in_stream_limit(setup) -> None:
    answer = setup.client.responses.create(model="gpt-5.4", input="hi")
    assert answer.output_text == "Hi there"
    served = [r.headers["chatgpt-account-id"] for r in setup.codex.received("/backend-api/codex/responses")]
    assert served == ["acc-1111-aaaa", "acc-2222-bbbb"]
    deadline = time.time() + 2  # health changes are written off the event loop
    while Account.get_by_id(setup.ids[0]).status != "cooling" and time.time() < deadline:
        time.sleep(0.02)
    primary = Account.get_by_id(setup.ids[0])
    assert primary.status == "cooling" and 1700 < primary.cooldown_until - time.time() <= 1800
    (event,) = wait_events(1)
    assert event.status == 200 and event.account_id == setup.ids[1]


@pytest.mark.parametrize("linger", [0.0, 1.0], ids=["upstream-ends", "client-hangs-up-first"])
def test_a_streaming_request_reports_the_in_stream_error_and_cools_the_account(setup, linger) -> None:
    setup.codex.linger = linger  # the SDK raises on the error event and closes: the record still names the error
    with pytest.raises(openai.APIError, match="usage limit"):
        list(setup.client.responses.create(model="gpt-5.4", input="hi", stream=True))
    (event,) = wait_events(1)
    assert event.error_type == "upstream_stream_error:usage_limit_reached" and event.streamed
    deadline = time.time() + 2
    while Account.get_by_id(setup.ids[0]).status != "cooling" and time.time() < deadline:
        time.sleep(0.02)
    assert Account.get_by_id(setup.ids[0]).status == "cooling"
    again = list(setup.client.responses.create(model="gpt-5.4", input="hi", stream=True))  # the next one skips it
    assert again[-1].type == "response.completed"
