"""`kleis.py debug`: mitmweb with the Kleis addon never shows a client key or an upstream token."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from addons.debug import run_web
from addons.services import Parts
from core.protocol import Protocol
from store import keys
from store.accounts import TokenSet, upsert_account
from tests.fakes.loopback_provider import LoopbackProvider


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def web(store, config, fake_oauth, fake_anthropic, fake_openai):
    provider = LoopbackProvider(
        config,
        {Protocol.MESSAGES: fake_anthropic.url, Protocol.CHAT: fake_openai.url, Protocol.RESPONSES: fake_openai.url},
        token_url=f"{fake_oauth.url}/v1/oauth/token",
    )
    access, refresh = fake_oauth.seed()
    upsert_account("loop", "a1", TokenSet(access, refresh, time.time() + 3600), store.cipher)
    _, key = keys.create_key("debug")
    web_port = free_port()
    state: dict = {}
    ready = threading.Event()

    def on_ready(master) -> None:
        state["master"], state["loop"] = master, asyncio.get_running_loop()
        ready.set()

    thread = threading.Thread(
        target=lambda: asyncio.run(
            run_web(store, config, web_port, on_ready=on_ready, port=0, providers={"loop": provider}, parts=Parts())
        ),
        daemon=True,
    )
    thread.start()
    assert ready.wait(15)
    master = state["master"]
    proxy_port = master.addons.get("proxyserver").listen_addrs()[0][1]
    yield {
        "proxy": f"http://127.0.0.1:{proxy_port}",
        "web": f"http://127.0.0.1:{web_port}",
        "key": key,
        "access": access,
        "refresh": refresh,
        "master": master,
        "token": master.ui_token,
    }
    state["loop"].call_soon_threadsafe(master.shutdown)
    thread.join(10)


def everything_the_ui_can_read(ui: httpx.Client) -> str:
    flows = ui.get("/flows")
    assert flows.status_code == 200
    texts = [flows.text, ui.get("/flows/dump").content.decode("latin-1")]
    for flow in flows.json():
        for side in ("request", "response"):
            texts.append(ui.get(f"/flows/{flow['id']}/{side}/content.data").content.decode("latin-1"))
            texts.append(ui.get(f"/flows/{flow['id']}/{side}/content/Auto.json").text)
        xsrf = ui.cookies.get("_xsrf") or ""
        for fmt in ("curl", "raw_request", "httpie"):
            exported = ui.post("/commands/export", json={"arguments": [fmt, f"@{flow['id']}"]}, headers={"X-XSRFToken": xsrf})
            texts.append(exported.text)
    return "\n".join(texts)


def test_ui_never_shows_keys_or_tokens(web, fake_anthropic) -> None:
    secrets = (web["key"], web["access"], web["refresh"])
    fake_anthropic.stream_delay = 0.15
    with httpx.Client(base_url=web["web"], timeout=10) as ui, httpx.Client(base_url=web["proxy"], timeout=20) as client:
        ui.get("/", params={"token": web["token"]})  # the per-run token becomes a cookie; also the xsrf cookie
        body = {"model": "loop/claude-d", "max_tokens": 20, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        with client.stream("POST", "/v1/messages", json=body, headers={"authorization": f"Bearer {web['key']}"}) as response:
            lines = response.iter_lines()
            next(lines)
            during = everything_the_ui_can_read(ui)  # while the stream is in flight
            rest = list(lines)
        assert any("message_stop" in line for line in rest)
        done = client.post("/v1/messages", json={**body, "stream": False}, headers={"x-api-key": web["key"]})
        assert done.status_code == 200
        rejected = client.post("/v1/messages", json=body, headers={"x-api-key": web["key"][:-2] + "zz"})
        assert rejected.status_code == 401
        after = everything_the_ui_can_read(ui)
    assert fake_anthropic.last("/v1/messages").headers["authorization"] == f"Bearer {web['access']}"  # the upstream got the real token
    assert '"path": "/v1/messages"' in after.replace('"path":"', '"path": "')  # the UI does show the flows
    for secret in secrets + (web["key"][:-2] + "zz",):
        assert secret not in during and secret not in after
        assert secret[:16] not in during and secret[:16] not in after


def test_ui_refuses_requests_without_the_run_token_and_script_loading(web) -> None:
    with httpx.Client(base_url=web["web"], timeout=10) as stranger:
        assert stranger.get("/flows").status_code == 403
        assert stranger.get("/", params={"token": "guess"}).status_code == 403
    with httpx.Client(base_url=web["web"], timeout=10, cookies={"kleis_debug": "guess"}) as guesser:
        assert guesser.get("/flows").status_code == 403
    with httpx.Client(base_url=web["web"], timeout=10) as operator:
        assert operator.get("/", params={"token": web["token"]}).status_code == 200
        assert operator.get("/flows").status_code == 200  # the cookie carries it from here
        xsrf = operator.cookies.get("_xsrf") or ""
        refused = operator.put("/options", json={"scripts": ["/tmp/evil.py"]}, headers={"X-XSRFToken": xsrf})
        assert refused.status_code == 403
        for command, arguments in (
            ("set", ["scripts", "/tmp/evil.py"]),
            ("set", ["scripts=/tmp/evil.py"]),
            ("script.run", [[], "/tmp/evil.py"]),
            ("options.load", ["/tmp/evil.yaml"]),
        ):
            answer = operator.post(f"/commands/{command}", json={"arguments": arguments}, headers={"X-XSRFToken": xsrf})
            assert answer.status_code == 403, (command, answer.text)
        assert web["master"].options.scripts == []
        allowed = operator.post("/commands/set", json={"arguments": ["view_filter", "~q"]}, headers={"X-XSRFToken": xsrf})
        assert allowed.status_code == 200 and "error" not in allowed.json() and web["master"].options.view_filter == "~q"


def test_the_ui_may_only_look_filter_intercept_and_clear(web, fake_anthropic) -> None:
    with httpx.Client(base_url=web["web"], timeout=10) as ui, httpx.Client(base_url=web["proxy"], timeout=20) as client:
        ui.get("/", params={"token": web["token"]})
        xsrf = {"X-XSRFToken": ui.cookies.get("_xsrf") or ""}
        body = {"model": "loop/claude-d", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
        assert client.post("/v1/messages", json=body, headers={"x-api-key": web["key"]}).status_code == 200
        (flow,) = ui.get("/flows").json()
        options = web["master"].options
        mode_before = list(options.mode)
        for update in (
            {"mode": ["upstream:http://127.0.0.1:9@127.0.0.1:0"]},
            {"upstream_auth": "u:p"},
            {"save_stream_file": "/tmp/kleis-flows"},
            {"ssl_insecure": True},
            {"anticache": True},
            {"view_filter": "~q", "connection_strategy": "eager"},  # one refused option refuses the update
        ):
            assert ui.put("/options", json=update, headers=xsrf).status_code == 403, update
        assert options.mode == mode_before and not options.save_stream_file and not options.ssl_insecure and options.view_filter is None
        for command, arguments in (
            ("export.file", ["curl", f"@{flow['id']}", "/tmp/kleis-export"]),
            ("save.file", [f"@{flow['id']}", "/tmp/kleis-save"]),
            ("replay.client", [f"@{flow['id']}"]),
            ("view.flows.load", ["/tmp/kleis-save"]),
            ("set", ["mode=upstream:http://127.0.0.1:9"]),
            ("set", ["save_stream_file", "/tmp/kleis-flows"]),
        ):
            answer = ui.post(f"/commands/{command}", json={"arguments": arguments}, headers=xsrf)
            assert answer.status_code == 403, (command, answer.text)
        for method, path in (
            ("PUT", f"/flows/{flow['id']}"),
            ("POST", f"/flows/{flow['id']}/replay"),
            ("POST", f"/flows/{flow['id']}/request/content.data"),
            ("POST", "/flows/dump"),
            ("GET", "/processes"),
        ):
            answer = ui.request(method, path, json={"request": {"host": "evil.example"}}, headers=xsrf)
            assert answer.status_code == 403, (method, path, answer.text)
        assert len(fake_anthropic.received("/v1/messages")) == 1  # nothing was replayed
        assert not Path("/tmp/kleis-export").exists() and not Path("/tmp/kleis-save").exists()
        assert ui.put("/options", json={"view_filter": "~u messages", "intercept": "~q"}, headers=xsrf).status_code == 200
        assert options.view_filter == "~u messages" and options.intercept == "~q"
        assert ui.post("/commands/view.filter.set", json={"arguments": [""]}, headers=xsrf).json().get("error") is None
        assert ui.post("/clear", headers=xsrf).status_code == 200 and ui.get("/flows").json() == []


def test_a_token_is_swapped_in_only_towards_the_host_kleis_routed_to(web, fake_anthropic) -> None:
    """Were the listeners changed anyway (here from inside the process), a request through an upstream proxy
    carries the token's reference, never the token."""
    from tests.fakes.anthropic import FakeAnthropic

    evil = FakeAnthropic().start()
    try:
        master, port = web["master"], free_port()
        spec = f"upstream:{evil.url}@127.0.0.1:{port}"
        master.event_loop.call_soon_threadsafe(lambda: master.options.update(mode=[*master.options.mode, spec]))
        proxyserver = master.addons.get("proxyserver")
        deadline = time.time() + 10
        while not any(s.mode.full_spec == spec and s.listen_addrs for s in proxyserver.servers) and time.time() < deadline:
            time.sleep(0.05)
        body = {"model": "loop/claude-d", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(proxy=f"http://127.0.0.1:{port}", timeout=20) as client:
            client.post("http://kleis.test/v1/messages", json=body, headers={"x-api-key": web["key"]})
        seen = evil.last("/v1/messages").headers["authorization"]
        assert web["access"] not in seen and seen.startswith("Bearer kleis-secret-ref-")
    finally:
        evil.stop()


def test_the_live_updates_websocket_needs_the_token_too(web) -> None:
    import tornado.httpclient
    import tornado.websocket

    url = web["web"].replace("http://", "ws://") + "/updates"

    async def connect(cookie: str | None):
        headers = {"Cookie": f"kleis_debug={cookie}"} if cookie else {}
        request = tornado.httpclient.HTTPRequest(url, headers=headers)
        try:
            connection = await tornado.websocket.websocket_connect(request)
        except tornado.httpclient.HTTPClientError as exc:
            return exc.code
        connection.close()
        return 101

    assert asyncio.run(connect(None)) == 403
    assert asyncio.run(connect("guess")) == 403
    assert asyncio.run(connect(web["token"])) == 101
