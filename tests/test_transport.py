"""The real `offload-mcp serve` process over stdio, streamable HTTP and SSE, and its HTTP guard."""

from __future__ import annotations

import json
import queue
import secrets
import subprocess
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from offload_mcp.http_guard import HttpGuard, is_local_origin
from tests.clients import free_port, offload_mcp_command, serve_http, server_env, stop_process

#: every network or process step gets a bound well inside pytest-timeout's 120 s
STEP_TIMEOUT_S = 60

INITIALIZE: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "offload-mcp-tests", "version": "0"},
    },
}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


def stdio_params(home: Path) -> StdioServerParameters:
    env = server_env(home)
    return StdioServerParameters(
        command=str(offload_mcp_command()), args=["serve"], env=env, cwd=str(home)
    )


def text_of(result: Any) -> str:
    return "\n".join(block.text for block in result.content if hasattr(block, "text"))


def tool_names(listed: Any) -> set[str]:
    return {tool.name for tool in listed.tools}


# --- stdio ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
async def test_stdio_lists_tools_and_calls_status(home: Path) -> None:
    with anyio.fail_after(STEP_TIMEOUT_S):
        async with Client(stdio_params(home)) as client:
            assert client.server_info is not None
            assert client.server_info.name == "offload"
            tools = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert {"offload", "status"} <= set(tools)
            # prose tools: no outputSchema, so Claude Code shows the model the text itself
            assert tools["offload"].output_schema is None
            assert "task" in tools["offload"].input_schema["properties"]

            status = await client.call_tool("status", {})
            assert not status.is_error, text_of(status)
            assert "offload-mcp keys set" in text_of(status)
    assert (home / "logs" / "offload-mcp.log").exists(), "OFFLOAD_MCP_HOME was not used"


@pytest.mark.slow
@pytest.mark.anyio
async def test_stdio_offload_without_keys_is_a_readable_error(home: Path) -> None:
    # legacy mode: the `initialize` handshake Claude Code itself uses
    with anyio.fail_after(STEP_TIMEOUT_S):
        async with Client(stdio_params(home), mode="legacy") as client:
            result = await client.call_tool("offload", {"task": "Say hi.", "text": "hello"})
    assert result.is_error
    message = text_of(result)
    assert "offload-mcp keys set" in message, message
    assert "groq" in message, message  # names the provider to fix, not a generic failure


def _read_lines(stream: Any, into: queue.Queue[bytes | None]) -> None:
    for line in iter(stream.readline, b""):
        into.put(line)
    into.put(None)


@pytest.mark.slow
def test_stdio_writes_nothing_but_protocol_to_stdout(home: Path) -> None:
    """Drive the server by hand; every stdout line must be one JSON-RPC message."""
    requests: list[dict[str, Any]] = [
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "prompts/list"},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "status"}},
        {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "tools/call",
            "params": {"name": "offload", "arguments": {"task": "x"}},
        },
    ]
    stderr_path = home / "stdio.stderr"
    lines: list[bytes] = []
    answered: dict[int, dict[str, Any]] = {}
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [str(offload_mcp_command()), "serve", "--log-level", "DEBUG"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=server_env(home),
            cwd=home,
            start_new_session=True,
        )
    reader: threading.Thread | None = None
    try:
        assert process.stdin is not None and process.stdout is not None
        received: queue.Queue[bytes | None] = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(process.stdout, received), daemon=True)
        reader.start()
        process.stdin.write(b"".join(json.dumps(r).encode() + b"\n" for r in requests))
        process.stdin.flush()
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while len(answered) < 5:
            line = received.get(timeout=max(deadline - time.monotonic(), 0.01))
            if line is None:
                break
            lines.append(line)
            message = json.loads(line)
            if "id" in message:
                answered[message["id"]] = message
        process.stdin.close()  # EOF: the server must exit by itself
        returncode = process.wait(timeout=STEP_TIMEOUT_S)
        reader.join(timeout=STEP_TIMEOUT_S)
        while (line := received.get_nowait() if not received.empty() else None) is not None:
            lines.append(line)
    finally:
        stop_process(process)
        if process.stdout is not None:
            process.stdout.close()
    stderr_text = stderr_path.read_text("utf-8", errors="replace")
    assert sorted(answered) == [1, 2, 3, 4, 5], (lines, stderr_text)
    for line in lines:
        message = json.loads(line)  # a stray print would fail here
        assert message.get("jsonrpc") == "2.0", line
    assert answered[4]["result"]["isError"] is False
    assert answered[5]["result"]["isError"] is True
    assert returncode == 0, stderr_text


# --- streamable HTTP and SSE ------------------------------------------------------------------


def _initialize(url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(
        url, json=INITIALIZE, headers={**MCP_HEADERS, **(headers or {})}, timeout=STEP_TIMEOUT_S
    )


def _sse_payload(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message of a one-event `text/event-stream` (or plain JSON) body."""
    if response.headers["content-type"].startswith("application/json"):
        payload: dict[str, Any] = response.json()
        return payload
    data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
    assert data, response.text
    payload = json.loads(data[-1])
    return payload


@pytest.mark.slow
def test_http_initialize_on_loopback_and_origin_checks(home: Path) -> None:
    with serve_http("http", home) as server:
        response = _initialize(server.url)
        assert response.status_code == 200, response.text
        result = _sse_payload(response)["result"]
        assert result["serverInfo"]["name"] == "offload"
        assert result["instructions"]

        local = _initialize(server.url, {"Origin": f"http://localhost:{server.port}"})
        assert local.status_code == 200, local.text

        evil = _initialize(server.url, {"Origin": "http://evil.example"})
        assert evil.status_code == 403
        assert "Origin" in evil.json()["error"]
        rebinding = _initialize(server.url, {"Origin": "http://127.0.0.1.evil.example"})
        assert rebinding.status_code == 403


@pytest.mark.slow
@pytest.mark.anyio
async def test_http_with_token(home: Path) -> None:
    token = secrets.token_urlsafe(24)
    with serve_http("http", home, env={"OFFLOAD_MCP_TOKEN": token}) as server:
        missing = _initialize(server.url)
        assert missing.status_code == 401
        assert "www-authenticate" not in missing.headers  # else Claude Code attempts OAuth
        assert token not in missing.text
        wrong = _initialize(server.url, {"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        right = _initialize(server.url, {"Authorization": f"Bearer {token}"})
        assert right.status_code == 200, right.text
        # a bad Origin is refused even with the right token
        evil = _initialize(
            server.url, {"Authorization": f"Bearer {token}", "Origin": "https://evil.example"}
        )
        assert evil.status_code == 403

        headers = {"Authorization": f"Bearer {token}"}
        with anyio.fail_after(STEP_TIMEOUT_S):
            async with (
                httpx2.AsyncClient(headers=headers) as http,
                Client(streamable_http_client(server.url, http_client=http)) as client,
            ):
                assert {"offload", "status"} <= tool_names(await client.list_tools())
                status = await client.call_tool("status", {})
                assert not status.is_error, text_of(status)


@pytest.mark.slow
@pytest.mark.anyio
async def test_sse_transport(home: Path) -> None:
    with serve_http("sse", home) as server:
        evil = httpx.get(server.url, headers={"Origin": "http://evil.example"}, timeout=10)
        assert evil.status_code == 403
        with anyio.fail_after(STEP_TIMEOUT_S):
            async with Client(sse_client(server.url), mode="legacy") as client:
                assert {"offload", "status"} <= tool_names(await client.list_tools())
                result = await client.call_tool("offload", {"task": "Say hi."})
                assert result.is_error
                assert "offload-mcp keys set" in text_of(result)


@pytest.mark.slow
@pytest.mark.parametrize(("host", "transport"), [("0.0.0.0", "http"), ("::", "sse")])
def test_non_loopback_bind_without_token_is_refused(home: Path, host: str, transport: str) -> None:
    command = [str(offload_mcp_command()), "serve", "--transport", transport]
    done = subprocess.run(
        [*command, "--host", host, "--port", str(free_port())],
        capture_output=True,
        text=True,
        env=server_env(home),
        cwd=home,
        stdin=subprocess.DEVNULL,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 2, done
    assert "OFFLOAD_MCP_TOKEN" in done.stderr
    assert "refusing" in done.stderr
    assert done.stdout == ""


# --- http_guard unit tests --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "local"),
    [
        ("http://localhost", True),
        ("http://localhost:3000", True),
        ("http://LOCALHOST:3000", True),
        ("https://localhost", True),
        ("http://127.0.0.1:8765", True),
        ("http://127.1.2.3", True),
        ("http://[::1]:8080", True),
        ("http://evil.example", False),
        ("https://evil.example:443", False),
        ("http://localhost.evil.example", False),
        ("http://127.0.0.1.evil.example", False),
        ("http://localhost@evil.example", False),
        ("http://0.0.0.0:8765", False),
        ("http://192.168.1.10", False),
        ("http://[::]:8765", False),
        ("ws://localhost", False),
        ("file://", False),
        ("chrome-extension://abcdef", False),
        ("null", False),
        ("", False),
    ],
)
def test_is_local_origin(origin: str, local: bool) -> None:
    assert is_local_origin(origin) is local


Message = MutableMapping[str, Any]


class FakeApp:
    def __init__(self) -> None:
        self.scopes: list[Message] = []

    async def __call__(self, scope: Message, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"app"})


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _call(guard: HttpGuard, headers: dict[str, str], kind: str = "http") -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Message = {
        "type": kind,
        "method": "POST",
        "path": "/mcp",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
    }
    await guard(scope, _receive, send)
    return sent


def _status(sent: list[Message]) -> int:
    status: int = sent[0]["status"]
    return status


def _body(sent: list[Message]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(sent[1]["body"])
    return body


@pytest.mark.anyio
async def test_guard_without_token_passes_local_and_absent_origins() -> None:
    app = FakeApp()
    guard = HttpGuard(app, None)
    assert _status(await _call(guard, {})) == 200
    assert _status(await _call(guard, {"Origin": "http://localhost:5173"})) == 200
    assert _status(await _call(guard, {"Authorization": "Bearer anything"})) == 200
    assert len(app.scopes) == 3


@pytest.mark.anyio
async def test_guard_refuses_foreign_origin_before_the_app() -> None:
    app = FakeApp()
    sent = await _call(HttpGuard(app, None), {"Origin": "http://evil.example"})
    assert _status(sent) == 403
    headers = dict(sent[0]["headers"])
    assert headers[b"content-type"] == b"application/json"
    assert int(headers[b"content-length"]) == len(sent[1]["body"])
    assert "Origin" in _body(sent)["error"]
    assert app.scopes == []


@pytest.mark.anyio
async def test_guard_token() -> None:
    app = FakeApp()
    guard = HttpGuard(app, "s3cret")
    missing = await _call(guard, {})
    assert _status(missing) == 401
    assert b"www-authenticate" not in dict(missing[0]["headers"])
    assert "s3cret" not in missing[1]["body"].decode()
    assert _status(await _call(guard, {"Authorization": "Bearer wrong"})) == 401
    assert _status(await _call(guard, {"Authorization": "s3cret"})) == 401
    assert _status(await _call(guard, {"Authorization": "Bearer s3cret "})) == 401
    assert app.scopes == []
    assert _status(await _call(guard, {"Authorization": "Bearer s3cret"})) == 200
    assert len(app.scopes) == 1
    assert _status(await _call(guard, {"Authorization": "bearer s3cret"})) == 200  # RFC 9110
    assert len(app.scopes) == 2
    # Origin is checked first: the right token does not let a web page in
    both = {"Authorization": "Bearer s3cret", "Origin": "http://evil.example"}
    assert _status(await _call(guard, both)) == 403
    assert len(app.scopes) == 2


@pytest.mark.anyio
async def test_guard_passes_lifespan_through() -> None:
    app = FakeApp()
    sent = await _call(HttpGuard(app, "s3cret"), {}, kind="lifespan")
    assert sent == []
    assert [scope["type"] for scope in app.scopes] == ["lifespan"]


@pytest.mark.anyio
async def test_guard_checks_websockets_too() -> None:
    app = FakeApp()
    guard = HttpGuard(app, "s3cret")
    closed = await _call(guard, {}, kind="websocket")
    assert closed[0]["type"] == "websocket.close" and closed[0]["code"] == 1008
    closed = await _call(guard, {"Origin": "http://evil.example"}, kind="websocket")
    assert closed[0]["type"] == "websocket.close"
    assert app.scopes == []
