"""OpenAI Codex CLI for one-shot packets: `codex exec --json`, read-only, prompt on stdin.

Facts: reference/backends.md §1 (Codex 0.169.0). The executable is the provider's `command`
(default `codex` on PATH) and `env` adds to its environment (e.g. CODEX_HOME), as for every CLI
provider; Codex-only settings live in the provider's `extra_body` table:

- `profile`: `-p PROFILE`; `config`: `{dotted.key = value}` passed as `-c key=<TOML value>`
- `user_config` (default false): load the user's `~/.codex/config.toml`
- `idle_timeout_s`: kill the run after this long without an event (default 300)

No delegation loops: by default the child runs with `--ignore-user-config`, so the MCP servers
the user registered with Codex (offload-mcp among them) are never started, while the login in
`$CODEX_HOME/auth.json` still applies. `-c mcp_servers={}` is added as well; on its own it is
not enough, since Codex merges config tables key by key and an empty table removes nothing.
With `user_config = true` the user's own config (and its MCP servers) loads: their choice.
(Checked with 0.169.0: an `[mcp_servers.x]` in `$CODEX_HOME/config.toml` starts despite
`-c mcp_servers={}` and does not start with `--ignore-user-config`; tests/test_codex_cli.py.)

Any Responses-API server works through `config`, since `-c` overrides still apply with
`--ignore-user-config`: `model_provider = "p"`, `"model_providers.p.base_url" = ".../v1"`,
`"model_providers.p.wire_api" = "responses"`, `"model_providers.p.env_key" = "VAR"` (the
variable set in `env`); `stream_max_retries` governs 429 and dropped-stream retries. Set `model`
too: with no `-m`, 0.169.0 picks a model served a JavaScript "code mode" tool set.
Such a provider has its own credentials, so a refused login names its `env_key` rather than
`codex login` (`auth_hint`; the provider in use is read from `config`, then, with
`user_config`, from `$CODEX_HOME/config.toml` and its profile).

`delegate_to_codex` builds its own runs from `command(..., sandbox="workspace-write",
ephemeral=False)` and `resume_command` (one retry in the same thread); see offload_mcp/delegate.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from offload_mcp import errors
from offload_mcp.backends.base import Health
from offload_mcp.backends.codex_events import (
    AUTH_HINT,
    CodexRun,
    Progress,
    failure_error,
    killed_error,
)
from offload_mcp.backends.process import OutputTooLarge, ProcessTimedOut, run_process
from offload_mcp.config import ProviderConfig
from offload_mcp.packets import Completion, CompletionRequest, Usage

DEFAULT_IDLE_TIMEOUT_S = 300.0
PROBE_TIMEOUT_S = 15.0
#: `model = "default"` (or empty) lets Codex pick its configured default model
DEFAULT_MODEL = "default"
INSTALL_HINT = "Install the Codex CLI (`npm install -g @openai/codex`) or set its `command`."
LOGIN_HINT = "Run `codex login`, or store an API key: `offload-mcp keys set codex`."
_VERSION = re.compile(r"(\d+\.\d+\.\d+\S*)")


class CodexBackend:
    def __init__(self, provider: ProviderConfig, key: str | None) -> None:
        self.provider = provider
        self._key = key
        options = provider.extra_body
        self.binary = provider.command or "codex"
        self.profile = options.get("profile")
        self.overrides: dict[str, Any] = dict(options.get("config") or {})
        self.user_config = bool(options.get("user_config", False))
        self.idle_timeout_s = float(options.get("idle_timeout_s", DEFAULT_IDLE_TIMEOUT_S))

    async def aclose(self) -> None:
        return None

    # --- building the call ----------------------------------------------------------------

    def resolved_binary(self) -> str | None:
        return shutil.which(self.binary)

    def command(
        self,
        binary: str,
        workdir: str,
        schema_file: str | None,
        *,
        sandbox: str = "read-only",
        ephemeral: bool = True,
    ) -> list[str]:
        """`codex exec` arguments for one packet (read-only, ephemeral by default); prompt on stdin.

        `ephemeral=False` keeps the session so `resume_command` can continue it.
        """
        argv = [binary, "exec", "--json", "--skip-git-repo-check"]
        if ephemeral:
            argv.append("--ephemeral")
        argv += ["-s", sandbox, "-C", workdir]
        argv += self._shared_flags(schema_file)
        if self.profile:
            argv += ["-p", str(self.profile)]
        argv.append("-")
        return argv

    def resume_command(
        self, binary: str, thread_id: str, schema_file: str | None, *, sandbox: str
    ) -> list[str]:
        """`codex exec [flags] resume THREAD -`: run it with the workdir as cwd.

        The `resume` subcommand itself rejects `-s`, `-C` and `-p` (reference §1.4); exec's own
        flags go before it (0.169.0 accepts them there; `-c profile=...` is refused as legacy).
        The sandbox travels as `-c sandbox_mode=...`, the model is passed again (resume does
        not remember it), and the cwd stands in for `-C`.
        """
        argv = [binary, "exec", "--json", "--skip-git-repo-check"]
        argv += self._shared_flags(schema_file)
        argv += ["-c", f"sandbox_mode={toml_value(sandbox)}"]
        if self.profile:
            argv += ["-p", str(self.profile)]
        argv += ["resume", thread_id, "-"]
        return argv

    def _shared_flags(self, schema_file: str | None) -> list[str]:
        argv = [] if self.user_config else ["--ignore-user-config"]
        argv += ["-c", "mcp_servers={}"]
        for dotted, value in self.overrides.items():
            argv += ["-c", f"{dotted}={toml_value(value)}"]
        if self.provider.model and self.provider.model != DEFAULT_MODEL:
            argv += ["-m", self.provider.model]
        if schema_file is not None:
            argv += ["--output-schema", schema_file]
        return argv

    def child_env(self) -> dict[str, str]:
        """The user's environment (HOME / CODEX_HOME hold the login) with our key, if any.

        `CODEX_API_KEY` comes only from the resolved key; exec ignores `OPENAI_API_KEY`.
        """
        env = {**os.environ, **self.provider.env}
        env.pop("CODEX_API_KEY", None)
        if self._key:
            env["CODEX_API_KEY"] = self._key
        env["NO_COLOR"] = "1"
        return env

    def model_provider(self) -> tuple[str, dict[str, Any]]:
        """The Codex model provider runs use ("openai", Codex's own, when none is named) and
        its settings: `config` overrides first, then the user's Codex config (with
        `user_config`, where a profile's choice comes before the top level's)."""
        ours = _flat(self.overrides)
        theirs = _flat(self._user_codex_config()) if self.user_config else {}
        name = (
            ours.get("model_provider")
            or theirs.get(f"profiles.{self.profile}.model_provider")
            or theirs.get("model_provider")
            or "openai"
        )
        prefix = f"model_providers.{name}."
        table = {k.removeprefix(prefix): v for k, v in theirs.items() if k.startswith(prefix)}
        table.update({k.removeprefix(prefix): v for k, v in ours.items() if k.startswith(prefix)})
        return str(name), table

    def auth_hint(self) -> str:
        """How to fix a refused login for the provider in use (its key, not `codex login`)."""
        name, table = self.model_provider()
        if name == "openai" or table.get("requires_openai_auth"):
            return AUTH_HINT
        env_key = table.get("env_key")
        if env_key:
            return (
                f"Fix: set {env_key}, the API key Codex provider `{name}` sends (in the codex "
                "provider's `env` in offload-mcp's config.toml, or the server's environment)."
            )
        return (
            f"Fix: Codex provider `{name}` sends no API key: give it "
            f"`model_providers.{name}.env_key` (or `http_headers`) for its server."
        )

    def _user_codex_config(self) -> dict[str, Any]:
        env = {**os.environ, **self.provider.env}
        home = Path(env.get("CODEX_HOME") or Path.home() / ".codex")
        try:
            return tomllib.loads((home / "config.toml").read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return {}

    @staticmethod
    def prompt(request: CompletionRequest) -> str:
        """System text first, then the rest: Codex takes one user prompt, no roles."""
        system = [m.content for m in request.messages if m.role == "system"]
        rest = [m.content for m in request.messages if m.role != "system"]
        return "\n\n".join([*system, *rest])

    # --- running it -----------------------------------------------------------------------

    async def complete(self, request: CompletionRequest) -> Completion:
        name = self.provider.name
        binary = self.resolved_binary()
        if binary is None:
            raise errors.ProviderDown(name, f"`{self.binary}` not found.", hint=INSTALL_HINT)
        with tempfile.TemporaryDirectory(prefix="offload-codex-") as scratch:
            # An empty working root: a packet is self-contained and must not read the
            # server's own directory (read-only still allows reading).
            workdir = Path(scratch, "work")
            workdir.mkdir()
            schema_file = None
            if request.json_schema is not None:
                schema_file = str(Path(scratch, "schema.json"))
                Path(schema_file).write_text(json.dumps(request.json_schema), "utf-8")
            run, exit_code, stderr_tail = await self._run(
                self.command(binary, str(workdir), schema_file), request
            )
        if not run.completed or exit_code != 0:
            raise failure_error(name, run, exit_code, stderr_tail, self.auth_hint())
        text = run.final_message or ""
        if not text.strip():
            raise errors.BadResponse(name, "finished without a final message.")
        usage = run.usage
        return Completion(
            text=text,
            usage=Usage(
                input_tokens=usage.input_tokens if usage else 0,
                cached_input_tokens=usage.cached_input_tokens if usage else 0,
                output_tokens=usage.output_tokens if usage else 0,
            ),
            model=self.provider.model or DEFAULT_MODEL,
        )

    async def _run(self, argv: list[str], request: CompletionRequest) -> tuple[CodexRun, int, str]:
        workdir = argv[argv.index("-C") + 1]
        run = CodexRun(root=workdir)
        prompt = self.prompt(request)
        code, stderr_tail = await self.stream(argv, workdir, prompt, run, request.timeout_s)
        return run, code, stderr_tail

    async def stream(
        self,
        argv: list[str],
        cwd: str | Path,
        prompt: str,
        run: CodexRun,
        timeout_s: float,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> tuple[int, str]:
        """Run Codex, feeding its events to `run`; (exit code, stderr tail), or a typed error.

        The whole process group dies on the hard or idle timeout, and when Codex only waits
        for a network it cannot reach (it would retry for ever).
        """
        name = self.provider.name
        idle_s = min(self.idle_timeout_s, timeout_s)
        try:
            async with run_process(
                argv,
                env=self.child_env(),
                cwd=str(cwd),
                stdin_data=prompt.encode("utf-8"),
                timeout_s=timeout_s,
                idle_timeout_s=idle_s,
            ) as proc:
                async for line in proc.lines():
                    progress = run.feed(line)
                    if run.offline_s() >= idle_s:
                        raise killed_error(name, run, f"waited for the network over {idle_s:g} s")
                    if progress is not None and on_progress is not None:
                        on_progress(progress)
        except ProcessTimedOut as exc:
            raise killed_error(name, run, str(exc)) from None
        except OutputTooLarge as exc:
            raise errors.BadResponse(name, f"codex wrote too much: {exc}; killed.") from None
        except OSError as exc:
            raise errors.ProviderDown(
                name, f"cannot start `{argv[0]}`: {exc.strerror or exc}.", hint=INSTALL_HINT
            ) from None
        assert proc.result is not None
        code = proc.result.returncode
        return (code if code is not None else -1), proc.result.stderr_tail

    # --- availability ---------------------------------------------------------------------

    async def version(self) -> str | None:
        """`codex --version` -> "0.169.0", or None when it does not run."""
        binary = self.resolved_binary()
        if binary is None:
            return None
        code, out = await self._probe([binary, "--version"])
        found = _VERSION.search(out) if code == 0 else None
        return found.group(1) if found else None

    async def health(self) -> Health:
        """Installed and runnable, and (API key, custom provider, or `codex login status`)."""
        binary = self.resolved_binary()
        if binary is None:
            return Health(False, f"`{self.binary}` not found; {INSTALL_HINT}")
        version = await self.version()
        if version is None:
            return Health(False, f"`{binary} --version` failed")
        if self._key:
            return Health(True, f"codex {version}; API key set")
        name, table = self.model_provider()
        if name != "openai" and not table.get("requires_openai_auth"):
            return Health(True, f"codex {version}; provider {name}")
        code, out = await self._probe([binary, "login", "status"])
        if code == 0:
            said = out.strip().splitlines()[0] if out.strip() else "logged in"
            return Health(True, f"codex {version}; {said}")
        return Health(False, f"codex {version}; not logged in. {LOGIN_HINT}")

    async def _probe(self, argv: list[str]) -> tuple[int | None, str]:
        lines: list[str] = []
        try:
            async with run_process(
                argv, env=self.child_env(), timeout_s=PROBE_TIMEOUT_S, kill_grace_s=0.5
            ) as proc:
                async for line in proc.lines():
                    lines.append(line)
        except (ProcessTimedOut, OutputTooLarge, OSError):
            return None, ""
        assert proc.result is not None
        return proc.result.returncode, "\n".join(lines)


def _flat(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested tables as dotted keys (`config` may hold either form)."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def toml_value(value: Any) -> str:
    """A Python value as an inline TOML value, for `-c key=value` overrides."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    raise errors.ConfigError(f"cannot pass {type(value).__name__} as a codex -c value")
