"""A real HTTP/1.1 server on 127.0.0.1 (port 0) for fake upstreams: JSON answers, timed SSE streams, recording."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclasses.dataclass
class Recorded:
    method: str
    path: str  # with query
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    @property
    def route(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}


@dataclasses.dataclass
class Reply:
    """A whole answer."""

    status: int = 200
    body: Any = None  # dict/list → JSON, bytes/str → as is
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Stream:
    """An SSE answer: each item is written (and flushed) after its delay; the server stamps send times."""

    events: list[bytes]
    delay: float = 0.0  # before each event
    split: int = 0  # > 0: write each event in pieces of this many bytes, with split_pause between them
    split_pause: float = 0.001
    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    cut_after: int | None = None  # drop the connection after this many events
    stamp: bool = False  # prefix each event with an id: <send time> line
    pauses: dict[int, float] = dataclasses.field(default_factory=dict)  # event index -> extra silence before it


@dataclasses.dataclass
class Hang:
    """Accept the request and never answer (until the server stops); `head` is written first (e.g. a status line
    and some headers, never finished)."""

    seconds: float = 60.0
    head: bytes = b""


Handler = Callable[[Recorded], "Reply | Stream | Hang"]


def sse(event: str | None, data: Any) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


class FakeServer:
    """Subclasses register routes in `__init__`; tests may queue one-off replies with `enqueue`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.routes: dict[tuple[str, str], Handler] = {}
        self.queued: dict[tuple[str, str], list[Reply | Stream | Hang]] = {}
        self.sent_at: list[float] = []  # stamped send times of streamed events
        # headers added to every answer, chosen per request (e.g. an account's rate-limit headers by its token)
        self.answer_headers: Callable[[Recorded], dict[str, str]] | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- setup --------------------------------------------------------------------------
    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method.upper(), path)] = handler

    def enqueue(self, method: str, path: str, *replies: Reply | Stream | Hang) -> None:
        with self._lock:
            self.queued.setdefault((method.upper(), path), []).extend(replies)

    def start(self) -> FakeServer:
        fake = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                with fake._lock:
                    fake.requests.append(recorded)
                fake._answer(self, recorded)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        class Server(ThreadingHTTPServer):
            request_queue_size = 512  # bursts of hundreds of connections (the default backlog is 5)

        self._server = Server(("127.0.0.1", 0), RequestHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=type(self).__name__
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- inspection -----------------------------------------------------------------------
    def received(self, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if path is None or r.route == path]

    def last(self, path: str | None = None) -> Recorded:
        found = self.received(path)
        assert found, f"the fake received nothing on {path}"
        return found[-1]

    # -- answering ----------------------------------------------------------------------
    def _answer(self, handler: BaseHTTPRequestHandler, recorded: Recorded) -> None:
        key = (recorded.method, recorded.route)
        with self._lock:
            queue = self.queued.get(key)
            reply = queue.pop(0) if queue else None
        if reply is None:
            route = self.routes.get(key)
            reply = route(recorded) if route else Reply(404, {"error": {"message": f"fake: no route {key}"}})
        if isinstance(reply, Hang):
            if reply.head:
                handler.wfile.write(reply.head)
                handler.wfile.flush()
            self._stopping.wait(reply.seconds)
            handler.close_connection = True
            return
        if self.answer_headers is not None:
            reply = dataclasses.replace(reply, headers={**self.answer_headers(recorded), **reply.headers})
        if isinstance(reply, Stream):
            self._stream(handler, reply)
            return
        body = reply.body
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            content_type = "application/json"
        else:
            data = body.encode() if isinstance(body, str) else (body or b"")
            content_type = "text/plain"
        handler.send_response(reply.status)
        headers = {"content-type": content_type, **reply.headers}
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        handler.wfile.flush()

    def _stream(self, handler: BaseHTTPRequestHandler, stream: Stream) -> None:
        handler.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        handler.send_response(stream.status)
        for name, value in {"content-type": "text/event-stream", "cache-control": "no-cache", **stream.headers}.items():
            handler.send_header(name, value)
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        handler.wfile.flush()

        def chunk(data: bytes) -> None:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            handler.wfile.flush()

        try:
            for index, event in enumerate(stream.events):
                if stream.cut_after is not None and index >= stream.cut_after:
                    handler.close_connection = True
                    handler.connection.shutdown(socket.SHUT_RDWR)
                    return
                if stream.delay or index in stream.pauses:
                    time.sleep(stream.delay + stream.pauses.get(index, 0.0))
                if stream.stamp:
                    sent = time.time()
                    with self._lock:
                        self.sent_at.append(sent)
                    event = f"id: {sent:.6f}\n".encode() + event
                if stream.split > 0:
                    for start in range(0, len(event), stream.split):
                        chunk(event[start : start + stream.split])
                        time.sleep(stream.split_pause)
                else:
                    chunk(event)
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            handler.close_connection = True


def started(*fakes: FakeServer) -> Iterable[FakeServer]:
    for fake in fakes:
        fake.start()
    return fakes
