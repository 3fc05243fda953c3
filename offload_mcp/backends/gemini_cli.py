"""The Gemini CLI (`gemini -p`, npm `@google/gemini-cli`) as a backend: the fallback when there
is no API key but a logged-in CLI.

Headless with `-o stream-json`, the model pinned with `-m` (no router call), `--skip-trust`
(an untrusted folder exits 55), stdin carrying the packet (argv caps one argument at 128 KiB).
It runs in an empty temporary folder so its read-only file tools see nothing of the user's,
in its own process group, killed whole on timeout or cancellation. Its own retry loop for
per-minute 429s lasts about four minutes; our timeout cuts it short and says so.

The CLI returns no grounding metadata: with `grounding = true` the prompt asks for a numbered
source list, which is parsed off the answer; the searches come from its `tool_use` events.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from offload_mcp import errors
from offload_mcp.backends.base import Health
from offload_mcp.backends.process import (
    OutputTooLarge,
    ProcessTimedOut,
    RunningProcess,
    run_process,
)
from offload_mcp.config import ProviderConfig
from offload_mcp.packets import Completion, CompletionRequest, Grounding, Source, Usage
from offload_mcp.windows import window_reset

INSTALL_HINT = "Install it: npm install -g @google/gemini-cli, then run `gemini` once to log in."
LOGIN_HINT = "Run `gemini` once and log in with Google, or set GEMINI_API_KEY."
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
MAX_OUTPUT_BYTES = 4 * 1024 * 1024
KILL_GRACE_S = 2.0
SOURCES_ASK = (
    "\n\nUse google_web_search for facts. Cite them inline as [1], [2]. After the answer write "
    "a line `Sources:` and then one line per source: `[n] Title - URL`."
)
_SOURCE_LINE = re.compile(r"^\s*\[(\d+)\]\s*(.*?)\s*[-\u2013\u2014:]?\s*<?(https?://\S+?)>?\s*$")
#: `gemini --version` loads the whole bundle: ~3 s of CPU, 6-7 s on a busy 2-core machine
VERSION_TIMEOUT_S = 20.0
_EXIT_STATUS = {144: 400, 145: 401, 147: 403, 148: 404, 173: 429, 244: 500, 247: 503}


class GeminiCliBackend:
    def __init__(self, provider: ProviderConfig, key: str | None) -> None:
        self.provider = provider
        self._key = key

    async def aclose(self) -> None:
        return None

    def command(self) -> str:
        name = self.provider.command or "gemini"
        found = shutil.which(name)
        if found is None:
            raise errors.ProviderDown(
                self.provider.name, f"the Gemini CLI ({name}) is not installed.", hint=INSTALL_HINT
            )
        return os.path.abspath(found)

    def argv(self, binary: str) -> list[str]:
        return [binary, "-p", " ", "-o", "stream-json", "-m", self.provider.model, "--skip-trust"]

    def env(self) -> dict[str, str]:
        """The CLI's own environment (its login lives in HOME) plus what this provider sets."""
        env = {**os.environ, "GEMINI_CLI_TRUST_WORKSPACE": "true", "NO_COLOR": "1"}
        if self._key:
            env["GEMINI_API_KEY"] = self._key
        if self.provider.base_url.rstrip("/") != DEFAULT_BASE_URL:
            env["GOOGLE_GEMINI_BASE_URL"] = self.provider.base_url
        env.update(self.provider.env)
        return env

    def prompt(self, request: CompletionRequest) -> str:
        text = "\n\n".join(m.content for m in request.messages)
        return text + SOURCES_ASK if self.provider.grounding else text

    async def complete(self, request: CompletionRequest) -> Completion:
        binary = self.command()
        with tempfile.TemporaryDirectory(prefix="offload-gemini-") as folder:
            code, stdout, stderr = await self._run(binary, folder, request)
        events = _events(stdout)
        result = next((e for e in reversed(events) if e.get("type") == "result"), None)
        if code != 0 or result is None or result.get("status") != "success":
            raise self._failure(code, result, stderr)
        text = "".join(
            str(e.get("content", ""))
            for e in events
            if e.get("type") == "message" and e.get("role") == "assistant"
        )
        if not text.strip():
            raise errors.BadResponse(self.provider.name, "the CLI returned an empty answer.")
        queries = tuple(
            str(e["parameters"]["query"])
            for e in events
            if e.get("type") == "tool_use"
            and e.get("tool_name") == "google_web_search"
            and isinstance(e.get("parameters"), dict)
            and e["parameters"].get("query")
        )
        grounding = None
        if self.provider.grounding:
            text, sources = split_source_list(text)
            if sources or queries:
                grounding = Grounding(sources, queries)
        init = next((e for e in events if e.get("type") == "init"), {})
        return Completion(
            text=text,
            usage=_usage(result.get("stats")),
            model=str(init.get("model") or self.provider.model),
            grounding=grounding,
        )

    async def _run(
        self, binary: str, folder: str, request: CompletionRequest
    ) -> tuple[int, list[str], str]:
        """(exit code, stdout lines, stderr tail); its own process group, killed whole."""
        proc: RunningProcess | None = None
        try:
            async with run_process(
                self.argv(binary),
                cwd=folder,
                env=self.env(),
                stdin_data=self.prompt(request).encode(),
                timeout_s=request.timeout_s,
                max_stdout_bytes=MAX_OUTPUT_BYTES,
                kill_grace_s=KILL_GRACE_S,
            ) as proc:
                lines = [line async for line in proc.lines()]
        except ProcessTimedOut:
            stderr = proc.result.stderr_tail if proc and proc.result else ""
            raise self._timed_out(request.timeout_s, stderr) from None
        except OutputTooLarge:
            raise errors.BadResponse(
                self.provider.name, f"wrote more than {MAX_OUTPUT_BYTES} bytes of output."
            ) from None
        assert proc.result is not None
        code = proc.result.returncode
        return (-1 if code is None else code), lines, proc.result.stderr_tail

    def _timed_out(self, timeout_s: float, stderr: str) -> errors.ProviderError:
        if "Attempt" in stderr and ("429" in stderr or "quota" in stderr.lower()):
            return errors.RateLimited(
                self.provider.name,
                f"still retrying a rate limit after {timeout_s:g} s; stopped it.",
                retry_after_s=60.0,
            )
        return errors.ProviderTimeout(self.provider.name, f"no answer within {timeout_s:g} s.")

    def _failure(
        self, code: int, result: dict[str, Any] | None, stderr: str
    ) -> errors.ProviderError:
        """A typed error from the exit code and the `result`/stderr error object."""
        p = self.provider
        message = _error_message(result, stderr)
        status = _EXIT_STATUS.get(code) or _status_in(message)
        said = f"exit {code}: {_short(message)}"
        if code == 41 or status in (401, 403) or "API_KEY_INVALID" in message:
            return errors.AuthFailed(
                p.name, f"not logged in or key refused ({said}).", hint=LOGIN_HINT
            )
        if status == 429:
            if "daily" in message.lower() or "PerDay" in message:
                now = datetime.now(UTC)
                reset = window_reset("day", now, p.reset_tz)
                wait = (reset - now).total_seconds() if reset else 86_400.0
                return errors.RateLimited(
                    p.name, f"daily quota used up ({said}).", retry_after_s=wait
                )
            return errors.RateLimited(p.name, f"rate limited ({said}).", retry_after_s=60.0)
        if status == 404:
            return errors.ModelNotFound(p.name, f"model {p.model!r} not found ({said}).")
        if status is not None and status >= 500:
            return errors.ProviderDown(p.name, f"server error ({said}).", hint="Try again later.")
        if code == 0:
            return errors.BadResponse(p.name, f"the CLI ended without a result ({said}).")
        return errors.ProviderError(p.name, f"the CLI failed ({said}).")

    async def health(self) -> Health:
        try:
            binary = self.command()
        except errors.ProviderDown:
            return Health(False, f"not installed; {INSTALL_HINT}")
        try:
            with anyio.fail_after(VERSION_TIMEOUT_S):
                done = await anyio.run_process(
                    [binary, "--version"], env=self.env(), check=False, start_new_session=True
                )
        except (TimeoutError, OSError) as exc:
            return Health(False, f"`gemini --version` failed ({type(exc).__name__})")
        version = done.stdout.decode(errors="replace").strip()
        if done.returncode != 0:
            return Health(False, f"`gemini --version` exited {done.returncode}")
        auth = "API key" if self._key else login_method(self.env())
        if auth is None:
            return Health(False, f"Gemini CLI {version} is not logged in; {LOGIN_HINT}")
        return Health(True, f"Gemini CLI {version}, using {auth}")


_AUTH_NAMES = {
    "oauth-personal": "its Google login",
    "gemini-api-key": "an API key",
    "vertex-ai": "Vertex AI",
    "compute-default-credentials": "cloud credentials",
}


def login_method(env: dict[str, str]) -> str | None:
    """How the CLI will authenticate, by its own precedence (env, then its settings file), or
    None when it would exit 41. Its settings live in `$GEMINI_CLI_HOME` or `$HOME` `/.gemini`."""
    if env.get("GOOGLE_GENAI_USE_GCA", "").lower() == "true":
        return "its Google login"
    if env.get("GOOGLE_GENAI_USE_VERTEXAI", "").lower() == "true":
        return "Vertex AI"
    if env.get("GEMINI_API_KEY"):
        return "an API key"
    home = env.get("GEMINI_CLI_HOME") or env.get("HOME") or ""
    try:
        settings = json.loads((Path(home) / ".gemini" / "settings.json").read_text("utf-8"))
        auth = settings.get("security", {}).get("auth", {})
        # `selectedAuthType` at the top is how CLIs before the `security` section wrote it
        chosen = auth.get("selectedType") or settings.get("selectedAuthType")
    except (OSError, ValueError, KeyError, TypeError):
        chosen = None
    if not home or not isinstance(chosen, str) or not chosen:
        return None
    return _AUTH_NAMES.get(chosen, chosen)


def _events(lines: list[str]) -> list[dict[str, Any]]:
    events = []
    for raw in lines:
        line = raw.strip()
        if not line.startswith("{"):
            continue
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                events.append(event)
    return events


def _error_message(result: dict[str, Any] | None, text: str) -> str:
    error = result.get("error") if result else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    for line in reversed(text.splitlines()):  # `-o json` style: {"error": {...}} on stderr
        line = line.strip()
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                found = json.loads(line).get("error")
                if isinstance(found, dict) and found.get("message"):
                    return str(found["message"])
    lines = [ln for ln in text.splitlines() if ln.strip() and "Warning:" not in ln]
    return " ".join(lines[-3:]) or "no message"


def _status_in(message: str) -> int | None:
    """The HTTP status inside `[API Error: {...raw body...}]`, if any."""
    match = re.search(r'"code"\s*:\s*(\d{3})', message) or re.search(r"\b(4\d\d|5\d\d)\b", message)
    return int(match.group(1)) if match else None


def _short(message: str) -> str:
    text = " ".join(message.split())
    return text[:300] + ("…" if len(text) > 300 else "")


def _usage(stats: Any) -> Usage:
    stats = stats if isinstance(stats, dict) else {}

    def number(key: str) -> int:
        value = stats.get(key)
        return int(value) if isinstance(value, int | float) and value >= 0 else 0

    return Usage(
        input_tokens=number("input_tokens"),
        cached_input_tokens=number("cached"),
        output_tokens=number("output_tokens"),
    )


def split_source_list(text: str) -> tuple[str, tuple[Source, ...]]:
    """Take a trailing `Sources:` list of `[n] Title - URL` lines off an answer."""
    lines = text.rstrip().splitlines()
    sources: dict[int, Source] = {}
    cut = len(lines)
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index].strip()
        match = _SOURCE_LINE.match(line)
        if match:
            title = match.group(2).strip(" -\u2013\u2014:*") or match.group(3)
            sources[int(match.group(1))] = Source(title, match.group(3))
            cut = index
        elif line.lower().strip("*#: ") == "sources":
            cut = index
            break
        elif line:
            break
    if not sources:
        return text, ()
    ordered = [sources[n] for n in sorted(sources)]
    renumber = {n: i for i, n in enumerate(sorted(sources), start=1)}
    body = "\n".join(lines[:cut]).rstrip()
    body = re.sub(
        r"\[(\d+)\]",
        lambda m: f"[{renumber[int(m.group(1))]}]" if int(m.group(1)) in renumber else "",
        body,
    )
    return body, tuple(ordered)
