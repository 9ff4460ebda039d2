"""Calling a live Kleis in the proxy tests: request bodies per protocol, error shapes, a request written byte for byte."""

from __future__ import annotations

import json
import socket

import httpx

MESSAGES = {"model": "loop/claude-x", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
CHAT = {"model": "loop/gpt-x", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "loop/gpt-x", "input": [{"role": "user", "content": "hi"}]}


def anthropic_error(response: httpx.Response) -> dict:
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) >= {"type", "message"}, body
    return body["error"]


def openai_error(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "code"}, body
    return body["error"]


def raw_request(url: str, method: str, path: str, headers: dict[str, str], body: dict) -> tuple[int, bytes, dict]:
    """One request written byte for byte (method spelled as given); the status, the head and the JSON answer."""
    host, port = url.removeprefix("http://").split(":")
    data = json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"host: {host}", f"content-length: {len(data)}", "connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall("\r\n".join(lines).encode() + b"\r\n\r\n" + data)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, rest = reply.partition(b"\r\n\r\n")
    return int(head.split()[1]), head, json.loads(rest)
