"""Typed configuration: built-in presets, the user's `config.toml`, and where files live.

The server must start with no file at all (every preset is known, none has a key yet), and a
bad file must fail as one message naming the file, the line and the field, never half-load.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from offload_mcp.errors import ConfigError

Trust = Literal["local", "trusted", "untrusted"]
Window = Literal["minute", "hour", "day", "week", "month", "5h"]
StructuredOutput = Literal["json_schema", "json_object", "json_object_schema", "prompt"]
PrivacyCategory = Literal["secret", "pii", "phi"]
PrivacyAction = Literal["allow", "redact", "block"]

HOME_ENV = "OFFLOAD_MCP_HOME"

#: Tool name -> ordered provider names: free tiers first, then cheap paid.
DEFAULT_CHAINS: dict[str, list[str]] = {
    "offload": [
        "groq",
        "cerebras",
        "gemini-flash-lite",
        "openrouter-free",
        "openrouter-flash-lite",
    ],
    # Web-grounded answers with sources: the Gemini API, else a logged-in Gemini CLI.
    "research": ["gemini-search", "gemini-cli"],
    # The local lane: these never leave the machine unless `[local] allow_cloud = true`.
    "local_classify": ["embedded", "ollama"],
    "local_extract": ["ollama", "llamacpp", "lmstudio", "vllm"],
    "local_summarize": ["ollama", "llamacpp", "lmstudio", "vllm"],
    # delegate_to_codex: the first enabled provider of kind codex in this chain runs the work.
    "delegate": ["codex"],
}


@dataclass(frozen=True)
class Paths:
    """Where config, ledger and logs live; `OFFLOAD_MCP_HOME` moves all three together."""

    config_dir: Path
    data_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def ledger_file(self) -> Path:
        return self.data_dir / "ledger.db"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / "offload-mcp.log"

    @classmethod
    def discover(cls) -> Paths:
        home = os.environ.get(HOME_ENV)
        if home:
            root = Path(home).expanduser()
            return cls(config_dir=root, data_dir=root)
        import platformdirs  # not needed when OFFLOAD_MCP_HOME is set

        return cls(
            config_dir=Path(platformdirs.user_config_dir("offload-mcp", appauthor=False)),
            data_dir=Path(platformdirs.user_data_dir("offload-mcp", appauthor=False)),
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Prices(_Strict):
    """USD per million tokens; `cached_input` defaults to the input price."""

    input: float = Field(0.0, ge=0)
    cached_input: float | None = Field(None, ge=0)
    output: float = Field(0.0, ge=0)

    def cost(self, input_tokens: int, cached_tokens: int, output_tokens: int) -> float:
        cached_price = self.input if self.cached_input is None else self.cached_input
        fresh = max(input_tokens - cached_tokens, 0)
        paid = fresh * self.input + cached_tokens * cached_price + output_tokens * self.output
        return paid / 1e6


class CapLimit(_Strict):
    """Limits for one window; any left unset is not capped."""

    requests: int | None = Field(None, ge=0)
    tokens: int | None = Field(None, ge=0)
    usd: float | None = Field(None, ge=0)


class ProviderConfig(_Strict):
    """One provider after presets are merged: what a backend needs to talk to it."""

    name: str
    kind: Literal["openai_compat", "ollama", "embedded", "gemini", "gemini_cli", "codex"] = (
        "openai_compat"
    )
    #: per-category override of what the trust level allows (secret / pii / phi)
    privacy: dict[PrivacyCategory, PrivacyAction] = {}
    base_url: str
    model: str
    trust: Trust
    key: str | None = None
    key_env: str | None = None
    needs_key: bool = True
    structured_output: StructuredOutput = "json_schema"
    prices: Prices = Prices()
    caps: dict[Window, CapLimit] = {}
    reset_tz: str = "UTC"
    headers: dict[str, str] = {}
    extra_body: dict[str, Any] = {}
    timeout_s: float | None = Field(None, gt=0)
    #: seconds a local model stays loaded after its last use (Ollama keep_alive; embedded idle)
    keep_alive_s: float | None = Field(None, ge=0)
    enabled: bool = True
    notes: str = ""
    #: answer with Google Search grounding and return the sources (kind gemini)
    grounding: bool = False
    temperature: float | None = Field(None, ge=0, le=2)
    #: the CLI to run (kind gemini_cli): a name on PATH or a path
    command: str | None = None
    #: extra environment for a CLI provider's process (e.g. GEMINI_CLI_HOME)
    env: dict[str, str] = {}
    #: model family for cross_check (openai, google, meta...); unset: read from kind and model
    family: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    #: while the Claude window runs hot (`[limits] hot_window_percentile`): "prefer" moves this
    #: provider to the front of its chains, "avoid" to the back
    when_hot: Literal["prefer", "avoid"] | None = None

    @field_validator("reset_tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def key_name(self) -> str:
        """The name the key is stored under (`offload-mcp keys set NAME`)."""
        return self.key or self.name

    @property
    def is_paid(self) -> bool:
        return self.prices.input > 0 or self.prices.output > 0


class Limits(_Strict):
    """Bounds on what one packet may carry and how long it may run."""

    allowed_roots: list[str] = []
    max_file_bytes: int = Field(256 * 1024, gt=0)
    max_input_bytes: int = Field(1024 * 1024, gt=0)
    timeout_s: float = Field(120.0, gt=0)
    max_output_tokens: int = Field(2048, gt=0)
    #: how long a packet may wait for a capped or cooling provider to reset (0: fail at once)
    wait_s: float = Field(0.0, ge=0, le=86_400)
    #: the Claude window is "hot" when the active 5-hour block's projected API-equivalent cost,
    #: or the last 7 days', ranks at or above this percentile of your own past (0: never).
    #: While hot, chains lean cheap: `when_hot = "prefer"` providers first, then by price,
    #: `when_hot = "avoid"` ones last. Read from Claude Code's transcripts (see `audit`).
    hot_window_percentile: float = Field(0.0, ge=0, le=100)


class LedgerConfig(_Strict):
    """What the ledger keeps beyond counts."""

    #: keep each packet and answer with every sensitive value redacted (off: counts only)
    log_content: bool = False


class CacheConfig(_Strict):
    """Identical packets to the same provider and model are answered from the ledger."""

    enabled: bool = True
    ttl_s: float = Field(86_400.0, gt=0)


class LocalConfig(_Strict):
    """The local tools (local_*): by default only `local`-trust providers may see their data."""

    allow_cloud: bool = False


#: files never copied into a delegate workspace (matched against each path part, or the
#: whole relative path when the pattern holds a "/")
DEFAULT_DENY = [
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    ".ssh",
    ".aws",
    ".gnupg",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    "credentials",
    "credentials.*",
    "*credentials*.json",
    "service-account*.json",
    "secrets.*",
    "*.tfvars",
]


class DelegateConfig(_Strict):
    """delegate_to_codex: what never enters its workspace, and how long `verify` may run."""

    deny: list[str] = DEFAULT_DENY
    #: added to `deny` (so the defaults need not be repeated)
    deny_extra: list[str] = []
    verify_timeout_s: float = Field(600.0, gt=0)
    #: refuse to copy a non-git directory bigger than this (files)
    max_copy_files: int = Field(20_000, gt=0)
    #: finished worktrees kept per repository for the next delegation (0: none), and in all
    pool_per_repo: int = Field(2, ge=0)
    pool_max: int = Field(8, ge=0)


class Settings(_Strict):
    providers: dict[str, ProviderConfig]
    chains: dict[str, list[str]]
    limits: Limits = Limits()
    cache: CacheConfig = CacheConfig()
    ledger: LedgerConfig = LedgerConfig()
    local: LocalConfig = LocalConfig()
    delegate: DelegateConfig = DelegateConfig()
    source: str = "built-in defaults"

    def chain(self, tool: str, hot: bool = False) -> list[ProviderConfig]:
        """The tool's providers in order; a tool without a chain uses `offload`'s.

        `hot` (the Claude window runs hot) leans cheap: preferred first, then by price.
        """
        names = self.chains.get(tool) or self.chains.get("offload", [])
        chain = [self.providers[name] for name in names if self.providers[name].enabled]
        if hot:
            rank = {"prefer": 0, None: 1, "avoid": 2}
            chain.sort(key=lambda p: (rank[p.when_hot], p.prices.input + p.prices.output))
        return chain


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def missing_env_refs(url: str) -> list[str]:
    """Names in `${VAR}` references of a base URL that the environment does not set."""
    return [name for name in _ENV_REF.findall(url) if not os.environ.get(name)]


def expand_env_refs(url: str) -> str:
    return _ENV_REF.sub(lambda m: os.environ.get(m.group(1), m.group(0)), url)


def load_presets() -> dict[str, dict[str, Any]]:
    text = resources.files("offload_mcp").joinpath("presets/providers.toml").read_text("utf-8")
    return tomllib.loads(text)


class _FieldError(ValueError):
    """A problem at a dotted place of the user's config, so the message can name its line."""

    def __init__(self, loc: tuple[str, ...], message: str) -> None:
        super().__init__(f"{'.'.join(loc)}: {message}")
        self.loc = loc


def _merge_preset(
    name: str, raw: dict[str, Any], presets: dict[str, dict[str, Any]], seen: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Resolve `preset = ...` chains: a preset's fields first, then the entry's own on top."""
    base_name = raw.get("preset")
    if base_name is None and name in presets and presets[name] is not raw:
        base_name = name
    if base_name is None:
        return dict(raw)
    if not isinstance(base_name, str):
        raise ValueError("preset must be a string naming a built-in preset")
    if base_name in seen:
        raise ValueError(f"preset loop: {' -> '.join((*seen, base_name))}")
    if base_name not in presets:
        raise ValueError(f"unknown preset {base_name!r} (see 'offload-mcp config presets')")
    base = _merge_preset(base_name, presets[base_name], presets, (*seen, base_name))
    merged = {**base, **{k: v for k, v in raw.items() if k != "preset"}}
    merged.pop("abstract", None)
    return merged


def _provider(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    fields = dict(raw)
    fields.pop("preset", None)
    fields["name"] = name
    url = fields.get("base_url", "")
    if isinstance(url, str) and is_loopback(url):
        fields.setdefault("trust", "local")
        fields.setdefault("needs_key", bool(fields.get("key_env")))
    fields.setdefault("trust", "untrusted")
    return fields


_SECTIONS = ("providers", "chains", "limits", "cache", "ledger", "local", "delegate")


def build_settings(user: dict[str, Any], source: str = "built-in defaults") -> Settings:
    """Merge the user's parsed TOML over the built-in presets and validate the result."""
    presets = load_presets()
    raw_providers: dict[str, dict[str, Any]] = {
        name: _merge_preset(name, entry, presets)
        for name, entry in presets.items()
        if not entry.get("abstract")
    }
    unknown = sorted(user.keys() - set(_SECTIONS))
    if unknown:
        raise _FieldError((unknown[0],), f"unknown section (known: {', '.join(_SECTIONS)})")
    user_providers = user.get("providers", {})
    if not isinstance(user_providers, dict):
        raise _FieldError(("providers",), "must be a table")
    for name, entry in user_providers.items():
        if not isinstance(entry, dict):
            raise _FieldError(("providers", name), "must be a table")
        try:
            raw_providers[name] = _merge_preset(name, entry, presets)
        except ValueError as exc:
            raise _FieldError(("providers", name, "preset"), str(exc)) from None
    user_chains = user.get("chains", {})
    if not isinstance(user_chains, dict):
        raise _FieldError(("chains",), "must be a table of tool = [provider, ...]")
    settings = Settings.model_validate(
        {
            "providers": {name: _provider(name, raw) for name, raw in raw_providers.items()},
            "chains": {**DEFAULT_CHAINS, **user_chains},
            "limits": user.get("limits", {}),
            "cache": user.get("cache", {}),
            "ledger": user.get("ledger", {}),
            "local": user.get("local", {}),
            "delegate": user.get("delegate", {}),
            "source": source,
        }
    )
    for tool, names in settings.chains.items():
        for name in names:
            if name not in settings.providers:
                raise _FieldError(
                    ("chains", tool),
                    f"unknown provider {name!r} (see 'offload-mcp config presets')",
                )
    return settings


def load_settings(paths: Paths | None = None) -> Settings:
    """Read `config.toml` if it exists; any problem raises one `ConfigError` naming the place."""
    paths = paths or Paths.discover()
    path = paths.config_file
    if not path.exists():
        return build_settings({})
    try:
        text = path.read_text("utf-8")
        user = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {_describe_toml_error(exc)}") from None
    try:
        return build_settings(user, source=str(path))
    except ValidationError as exc:
        raise ConfigError(_describe_validation(path, text, exc)) from None
    except _FieldError as exc:
        line = locate(text, list(exc.loc))
        raise ConfigError(f"{path}: {f'line {line}: ' if line else ''}{exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _describe_toml_error(exc: tomllib.TOMLDecodeError) -> str:
    """tomllib says "Invalid value (at line 2, column 5)"; lead with the line like other errors."""
    message = str(exc)
    at = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if at is None:
        return f"not valid TOML: {message}"
    return f"line {at[1]}, column {at[2]}: not valid TOML: {message[: at.start()]}"


def _describe_validation(path: Path, text: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    # A bad dict key (a cap window) is reported as `...caps.fortnight.[key]`; the key is enough.
    loc = [str(part) for part in first["loc"] if part != "[key]"]
    line = locate(text, loc)
    where = f"line {line}: " if line else ""
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{path}: {where}{'.'.join(loc)}: {first['msg']}{more}"


_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_DOTTED_KEY = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER_LINE = re.compile(rf"\[\[?\s*({_DOTTED_KEY})\s*\]\]?\s*(?:#.*)?")
_KEY_LINE = re.compile(rf"({_DOTTED_KEY})\s*=")


def _key_parts(dotted: str) -> list[str]:
    """`providers."my.box".caps` -> ["providers", "my.box", "caps"]."""
    parts = re.findall(r""""([^"]*)"|'([^']*)'|([A-Za-z0-9_-]+)""", dotted)
    return [double or single or bare for double, single, bare in parts]


def locate(text: str, loc: list[str]) -> int | None:
    """Best-effort line number of a dotted config field, for error messages.

    tomllib keeps no positions, so walk the lines, tracking the current `[table]` header. A key
    line on the field's path wins; failing that, the deepest `[table]` header on it.
    """
    table: list[str] = []
    best: tuple[int, int] | None = None  # (depth, line) of the deepest header on the path
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        header = _HEADER_LINE.fullmatch(line)
        if header:
            table = _key_parts(header.group(1))
            if table == loc[: len(table)] and (best is None or len(table) > best[0]):
                best = (len(table), number)
            continue
        key = _KEY_LINE.match(line)
        if key:
            path = [*table, *_key_parts(key.group(1))]
            if path == loc[: len(path)]:
                return number
    return best[1] if best else None


STARTER_CONFIG = """\
# offload-mcp configuration. Every provider preset is built in; this file only overrides.
# `offload-mcp config show` prints the settings in force; keys never live in this file:
# `offload-mcp keys set groq` stores one in the OS keyring (or set GROQ_API_KEY).

[limits]
# Directories whose files a packet may read (default: the server's working directory).
# allowed_roots = ["~/code"]
# max_file_bytes = 262144
# timeout_s = 120
# max_output_tokens = 2048
# Lean to cheaper providers while your Claude 5-hour block or week runs hotter than this
# percentile of your past ones (from Claude Code's transcripts; 0: off).
# hot_window_percentile = 80

[local]
# local_* tools use only providers with local trust unless this is true.
# allow_cloud = false

[ledger]
# Keep each packet and answer, every sensitive value redacted (default: counts only).
# log_content = false

[chains]
# Ordered providers per tool: free tiers first, then cheap paid models.
offload = ["groq", "cerebras", "gemini-flash-lite", "openrouter-free", "openrouter-flash-lite"]

# Override a preset by its name ...
# [providers.groq]
# model = "llama-3.1-8b-instant"

# ... or define a provider of your own on top of a preset or from scratch.
# [providers.my-server]
# base_url = "http://127.0.0.1:8080/v1"   # loopback: trust defaults to "local"
# model = "qwen2.5-7b-instruct"
# trust = "local"                          # local | trusted | untrusted
# prices = { input = 0.0, output = 0.0 }   # USD per million tokens
# caps = { day = { requests = 500 } }       # windows: minute hour day week month 5h
"""
