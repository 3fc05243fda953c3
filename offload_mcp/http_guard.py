"""ASGI guard for the HTTP transports: bearer token and local-Origin checks.

Browsers attach an `Origin` header; refusing non-local origins stops a web page from driving a
server on this machine (DNS rebinding, cross-site requests). The token protects any non-loopback
binding. Pure ASGI, no framework, so it wraps both the streamable-HTTP and SSE apps.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_local_origin(origin: str) -> bool:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https"):
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpGuard:
    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope.get("headers", [])}
        origin = headers.get("origin")
        if origin is not None and not is_local_origin(origin.decode("latin-1")):
            await _deny(send, 403, "Origin not allowed: only local origins may call this server.")
            return
        if self._expected is not None and not hmac.compare_digest(
            headers.get("authorization", b""), self._expected
        ):
            await _deny(send, 401, "Missing or wrong bearer token.", bearer=True)
            return
        await self.app(scope, receive, send)


async def _deny(send: Send, status: int, message: str, *, bearer: bool = False) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if bearer:
        headers.append((b"www-authenticate", b'Bearer realm="offload-mcp"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
