"""ASGI guard for the HTTP transports: bearer token and local-Origin checks.

Browsers attach an `Origin` header; refusing non-local origins stops a web page from driving a
server on this machine (DNS rebinding, cross-site requests). The token protects any non-loopback
binding. Pure ASGI, no framework, so it wraps both the streamable-HTTP and SSE apps.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from offload_mcp.config import is_loopback

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_local_origin(origin: str) -> bool:
    return urlsplit(origin).scheme in ("http", "https") and is_loopback(origin)


class HttpGuard:
    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self._token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan events pass through
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        origin = headers.get("origin")
        if origin is not None and not is_local_origin(origin.decode("latin-1")):
            await _deny(scope, send, 403, "Origin not allowed: only local origins may call this.")
            return
        if self._token is not None and not self._authorised(headers.get("authorization", b"")):
            await _deny(scope, send, 401, "Missing or wrong bearer token.")
            return
        await self.app(scope, receive, send)

    def _authorised(self, header: bytes) -> bool:
        assert self._token is not None
        scheme, _, credentials = header.partition(b" ")
        # The scheme is case-insensitive (RFC 9110); the token is compared in constant time.
        return scheme.lower() == b"bearer" and hmac.compare_digest(credentials, self._token)


async def _deny(scope: Scope, send: Send, status: int, message: str) -> None:
    # No WWW-Authenticate header on 401: Claude Code answers one by attempting OAuth client
    # registration and then reports that, not the missing token.
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": message})
        return
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
