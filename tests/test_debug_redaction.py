"""`kleis.py debug`: mitmweb with the Kleis addon never shows a client key or an upstream token."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

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
def web(store, config, fake_oauth, fake_anthropic, fake_openai):  # type: ignore[no-untyped-def]
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

    def on_ready(master) -> None:  # type: ignore[no-untyped-def]
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
        allowed = operator.post("/commands/set", json={"arguments": ["anticache", "true"]}, headers={"X-XSRFToken": xsrf})
        assert allowed.status_code == 200 and "error" not in allowed.json() and web["master"].options.anticache  # others work


def test_the_live_updates_websocket_needs_the_token_too(web) -> None:
    import tornado.httpclient
    import tornado.websocket

    url = web["web"].replace("http://", "ws://") + "/updates"

    async def connect(cookie: str | None):  # type: ignore[no-untyped-def]
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
