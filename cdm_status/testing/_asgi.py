"""The little ASGI plumbing the simulator needs: read a request, send a response.

No web framework: the simulator serves four routes, and owning the bytes lets it send the
malformed answers (truncated bodies, dropped connections) a framework would refuse to.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

__all__ = ["ConnectionDropped", "Receive", "Request", "Scope", "Send", "read_request", "respond"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ConnectionDropped(Exception):
    """Raised by the app, after starting a response, to close the connection before the
    body is complete.

    In-process, the simulator's transport turns it into ``httpx.RemoteProtocolError``; an
    ASGI server (uvicorn) closes the connection when an app raises after starting its
    response, and the client sees the same error.
    """

    def __init__(self, received: int, expected: int) -> None:
        super().__init__(
            "peer closed connection without sending complete message body: "
            f"received {received} bytes, expected {expected}"
        )
        self.received = received
        self.expected = expected


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    raw_path: str
    segments: tuple[str, ...]
    query: str
    params: dict[str, str]
    headers: list[tuple[str, str]]
    body: bytes


def _split_path(raw_path: str) -> tuple[str, ...] | None:
    """Percent-decoded segments, one per ``/``-separated part of the raw path (so an
    encoded ``%2F`` stays inside its segment); None for bytes that are not UTF-8."""
    try:
        return tuple(unquote(part, errors="strict") for part in raw_path.split("/")[1:])
    except UnicodeDecodeError:
        return None


async def read_request(scope: Scope, receive: Receive) -> tuple[Request, bool]:
    """The request, and whether its path decoded cleanly."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    raw = scope.get("raw_path")
    # raw_path keeps %2F intact; fall back to the decoded path only if a server omits it.
    raw_path = raw.decode("latin-1") if raw else scope["path"]
    raw_path = raw_path.split("?", 1)[0]
    query = scope.get("query_string", b"").decode("latin-1")
    params: dict[str, str] = {}
    for item in query.split("&"):
        if item:
            key, _, value = item.partition("=")
            params.setdefault(unquote(key.replace("+", " ")), unquote(value.replace("+", " ")))
    segments = _split_path(raw_path)
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
    request = Request(
        method=scope["method"],
        raw_path=raw_path,
        segments=segments or (),
        query=query,
        params=params,
        headers=headers,
        body=b"".join(chunks),
    )
    return request, segments is not None


class Encoded(bytes):
    """A body already encoded as JSON, sent as it is."""


def encode(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON (an ``Encoded`` body as it is)."""
    if isinstance(body, Encoded):
        return body
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def respond(
    send: Send,
    status: int,
    body: bytes,
    *,
    headers: list[tuple[str, str]],
    content_type: str = "application/json;charset=UTF-8",
    declared_length: int | None = None,
) -> None:
    """One complete answer. ``declared_length`` > ``len(body)`` sends a truncated body:
    the response starts, part of it goes out, then the connection is dropped."""
    length = len(body) if declared_length is None else declared_length
    raw_headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(length).encode("latin-1")),
        *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers),
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    if length > len(body):
        await send({"type": "http.response.body", "body": body, "more_body": True})
        raise ConnectionDropped(len(body), length)
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer an ASGI server's startup and shutdown (the simulator needs neither)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
