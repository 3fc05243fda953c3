"""The delegation from brief to checked patch: validate, gate, workspace, Codex, verify, retry once.

Steps: the arguments are checked before anything starts (path inside the allowed roots, a
directory; files inside it and not deny-listed; `apply` only with `verify` and a writable
sandbox); the provider is the first enabled `codex` provider of the `delegate` chain, and must
be installed and logged in; the rendered brief passes the privacy gate at Codex's trust level
(redacted values are restored in Codex's summary). Then Codex works in an isolated workspace;
`verify` runs there; if it fails, the same thread is resumed once with the failing output
and `verify` runs again. The patch goes to a file; with `apply` it is written to the user's
tree only when verify passed and the touched files did not change meanwhile.

Outcomes: `verified` (verify passed), `verify_failed` (failed after the retry), `unverified`
(changes made and no `verify` given), `no_changes` (Codex finished without changing a file:
a review in the read-only sandbox ends here), `codex_failed` (Codex failed or timed out; the
changes it made so far are still in the patch). Codex being unusable (not installed, not
logged in, plan or quota exhausted, rate limited, cooling down) is an error, not an outcome.

Timeouts: `timeout_s` bounds each Codex run (the provider's `timeout_s`, default 600 s, when
not given) and the provider's `extra_body.idle_timeout_s` kills a run silent that long;
`[delegate] verify_timeout_s` bounds each verify. Cancelling the MCP call kills whatever runs
(process groups) and removes the workspace.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio

from offload_mcp import contract, errors
from offload_mcp.backends.codex import INSTALL_HINT, CodexBackend
from offload_mcp.backends.codex_events import CodexUsage
from offload_mcp.config import Paths, ProviderConfig
from offload_mcp.delegate import patch, retention, workspace
from offload_mcp.delegate import pool as pooling
from offload_mcp.delegate.codex_run import FATAL, Attempt, Runner
from offload_mcp.delegate.patch import Changes
from offload_mcp.delegate.progress import Send, Throttle
from offload_mcp.delegate.verify import RETRY_CHARS, RETRY_LINES, VerifyResult, run_verify
from offload_mcp.delegate.workspace import DenyList, Workspace
from offload_mcp.dispatch import Dispatcher
from offload_mcp.gate import overrides, scan_messages
from offload_mcp.inputs import allowed_roots
from offload_mcp.packets import Message
from offload_mcp.templates import get_template

Sandbox = Literal["workspace-write", "read-only"]
SANDBOXES: tuple[str, ...] = ("workspace-write", "read-only")
CHAIN = "delegate"
#: Codex's summary is trimmed to this for the result
SUMMARY_CHARS = 1500


@dataclass(frozen=True)
class Brief:
    task: str
    path: str
    constraints: str = ""
    acceptance: str = ""
    files: tuple[str, ...] = ()
    verify: str = ""
    schema: dict[str, Any] | None = None
    sandbox: str = "workspace-write"
    timeout_s: float = 0.0
    apply: bool = False
    keep_workspace: bool = False


@dataclass
class Delegation:
    """What happened, for the result text."""

    outcome: str
    provider: str
    model: str
    summary: str = ""
    changes: Changes | None = None
    verify: VerifyResult | None = None
    #: the failing verify that triggered the retry
    first_verify: VerifyResult | None = None
    retried: bool = False
    patch_file: Path | None = None
    applied: bool = False
    apply_error: str = ""
    usage: CodexUsage = field(default_factory=CodexUsage)
    seconds: float = 0.0
    kept: Path | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Checked:
    """A brief whose arguments were checked: resolved directory and deny list."""

    brief: Brief
    directory: Path
    deny: DenyList
    sandbox: str


def check_brief(dispatcher: Dispatcher, brief: Brief) -> Checked:
    """Refuse bad arguments before anything starts, each with what to do instead."""
    settings = dispatcher.settings
    if not brief.task.strip():
        raise errors.InvalidRequest("task: must not be blank.")
    if brief.sandbox not in SANDBOXES:
        raise errors.InvalidRequest(
            f"sandbox: {brief.sandbox!r} is not one of {', '.join(SANDBOXES)}.",
            hint="Use workspace-write to change files, read-only for reviews.",
        )
    directory = _directory(dispatcher, brief.path)
    config = settings.delegate
    deny = DenyList(tuple(config.deny) + tuple(config.deny_extra))
    for name in brief.files:
        resolved = (directory / name).resolve()
        if not resolved.is_relative_to(directory) or not resolved.exists():
            raise errors.InvalidRequest(f"files: {name} is not a path inside {brief.path}.")
        if deny.denies(resolved.relative_to(directory).as_posix()):
            raise errors.InvalidRequest(
                f"files: {name} is on the delegate deny list; Codex never sees it.",
                hint="Drop it from files, or change [delegate] deny in config.toml.",
            )
    if brief.apply and not brief.verify.strip():
        raise errors.InvalidRequest(
            "apply: needs a verify command; the patch is applied only after it passes.",
            hint="Give verify (e.g. `pytest -q`), or leave apply off and apply the patch file.",
        )
    if brief.apply and brief.sandbox == "read-only":
        raise errors.InvalidRequest("apply: a read-only run changes nothing to apply.")
    if brief.schema is not None:
        contract.check_schema(brief.schema)
    return Checked(brief, directory, deny, brief.sandbox)


def _directory(dispatcher: Dispatcher, path: str) -> Path:
    """The directory to work on: inside the allowed roots, existing, a directory."""
    if not path.strip():
        raise errors.InvalidRequest("path: give the repository or directory to work on.")
    base = dispatcher.cwd or Path.cwd()
    directory = (base / Path(path).expanduser()).resolve()
    roots = allowed_roots(dispatcher.settings.limits, dispatcher.cwd)
    if not any(directory.is_relative_to(root) for root in roots):
        raise errors.InvalidRequest(
            f"path: {path} is outside the allowed roots ({', '.join(map(str, roots))}).",
            hint="Pass a directory inside the project, or add it to limits.allowed_roots.",
        )
    if not directory.exists():
        raise errors.InvalidRequest(f"path: {path} does not exist.")
    if not directory.is_dir():
        raise errors.InvalidRequest(
            f"path: {path} is not a directory.",
            hint="Pass the repository (or directory) and name the file in `files`.",
        )
    return directory


def codex_provider(dispatcher: Dispatcher) -> ProviderConfig:
    chain = dispatcher.settings.chains.get(CHAIN, [])
    for name in chain:
        provider = dispatcher.settings.providers[name]
        if provider.enabled and provider.kind == "codex":
            return provider
    raise errors.InvalidRequest(
        "no enabled codex provider in the delegate chain.",
        hint='Set [chains] delegate = ["codex"] in config.toml and enable the codex provider.',
    )


async def ready_backend(dispatcher: Dispatcher, provider: ProviderConfig) -> CodexBackend:
    """The provider's backend, installed and logged in, or the error that says how to fix it."""
    found, problem = await dispatcher.availability(provider)
    if problem:
        raise errors.OffloadError(problem)
    backend = dispatcher.backend(provider, found.value if found else None)
    if not isinstance(backend, CodexBackend):
        raise errors.InvalidRequest(f"{provider.name}: not a codex provider.")
    if backend.resolved_binary() is None:
        raise _not_installed(backend)
    health = await dispatcher.health(provider, found.value if found else None)
    if not health.ok:
        raise errors.ProviderDown(provider.name, f"not usable: {health.detail}")
    return backend


def render_brief(brief: Brief) -> str:
    def section(title: str, body: str) -> str:
        return f"\n## {title}\n{body.strip()}\n" if body.strip() else ""

    files = "\n".join(f"- {name}" for name in brief.files)
    verify = (
        f"\n- The change is checked with `{brief.verify.strip()}`; run it and make it pass."
        if brief.verify.strip()
        else ""
    )
    if brief.sandbox == "read-only":
        verify += "\n- This is a read-only run: do not try to change files."
    return get_template("delegate").render(
        task=brief.task.strip(),
        constraints=section("Constraints", brief.constraints),
        acceptance=section("Done when", brief.acceptance),
        files=section("Focus on these files", files),
        verify=verify,
    )


def retry_prompt(result: VerifyResult) -> str:
    status = "timed out" if result.exit_code is None else f"exit {result.exit_code}"
    return get_template("delegate_retry").render(
        command=result.command,
        status=status,
        output=result.tail(RETRY_LINES, RETRY_CHARS).replace("```", "'''"),
    )


async def delegate(
    dispatcher: Dispatcher, paths: Paths, brief: Brief, send: Send | None = None
) -> Delegation:
    checked = check_brief(dispatcher, brief)
    provider = codex_provider(dispatcher)
    backend = await ready_backend(dispatcher, provider)
    throttle = Throttle(send)
    result: Delegation | None = None
    failure: Exception | None = None
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(throttle.run)
        try:
            result = await _delegate(dispatcher, paths, checked, backend, throttle)
        except Exception as exc:
            failure = exc  # raised below, outside the task group, so callers see it unwrapped
        finally:
            tasks.cancel_scope.cancel()
    if failure is not None:
        raise failure
    assert result is not None
    return result


async def _delegate(
    dispatcher: Dispatcher,
    paths: Paths,
    checked: Checked,
    backend: CodexBackend,
    throttle: Throttle,
) -> Delegation:
    brief = checked.brief
    provider = backend.provider
    started = time.monotonic()
    prompt = render_brief(brief)
    found = await scan_messages((Message("system", ""), Message("user", prompt)))
    screened = found.screen(provider.trust, overrides(provider))
    if screened.blocked:
        raise errors.InvalidRequest(
            f"the brief holds data {provider.name} ({provider.trust}) may not see: "
            f"{screened.reason}.",
            hint="Take it out of the brief; Codex can read what it needs from the files.",
        )
    prompt = screened.texts[0]
    digest = hashlib.sha256(prompt.encode()).hexdigest()
    binary = backend.resolved_binary()
    if binary is None:
        raise _not_installed(backend)
    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    folder = paths.data_dir / "delegate"
    timeout_s = brief.timeout_s or provider.timeout_s or 600.0
    config = dispatcher.settings.delegate

    throttle.enter("preparing the workspace")
    # A kept workspace is the caller's to inspect: it never comes from (or goes to) the pool.
    pool = (
        None
        if brief.keep_workspace
        else pooling.at(paths.data_dir, config.pool_per_repo, config.pool_max)
    )
    space = await anyio.to_thread.run_sync(
        lambda: workspace.create(
            checked.directory,
            checked.deny,
            parent=folder / "workspaces",
            max_copy_files=config.max_copy_files,
            pool=pool,
        )
    )
    done = Delegation(outcome="codex_failed", provider=provider.name, model=provider.model)
    try:
        if space.denied:
            done.notes.append(f"{len(space.denied)} deny-listed path(s) kept out of the workspace")
        schema_file = None
        request_schema = None
        if brief.schema is not None:
            request_schema = contract.request_schema(contract.make_contract(schema=brief.schema))
            schema_file = str(space.scratch / "schema.json")
            Path(schema_file).write_text(json.dumps(request_schema), "utf-8")
        can_retry = bool(brief.verify.strip()) and checked.sandbox == "workspace-write"
        argv = backend.command(
            binary,
            str(space.workdir),
            schema_file,
            sandbox=checked.sandbox,
            ephemeral=not can_retry,
        )
        throttle.enter("codex working")
        runner = Runner(
            dispatcher,
            backend,
            cwd=str(space.workdir),
            timeout_s=timeout_s,
            throttle=throttle,
            digest=digest,
            privacy=screened.summary(),
        )
        first = await runner.run(argv, prompt)
        _fatal(first)
        done.usage = first.usage
        done.summary = _summary(screened.restore(first.run.final_message or ""))
        done.changes = await anyio.to_thread.run_sync(patch.collect, space, checked.deny)
        if first.error is not None:
            done.notes.append(f"codex failed: {first.error}")
            return done
        if brief.schema is not None:
            answer = screened.restore(first.run.final_message or "")
            _check_schema(brief.schema, answer, done, folder / f"{name}.answer.json")
        if done.changes.empty:
            done.outcome = "no_changes"
            return done
        if not brief.verify.strip():
            done.outcome = "unverified"
            return done
        throttle.enter("verifying")
        log = folder / f"{name}.verify.log"
        folder.mkdir(parents=True, exist_ok=True)
        done.verify = await run_verify(
            brief.verify, space.workdir, timeout_s=config.verify_timeout_s, log=log
        )
        if not done.verify.passed and can_retry and first.run.thread_id:
            await _retry(runner, binary, first, done, schema_file)
            done.changes = await anyio.to_thread.run_sync(patch.collect, space, checked.deny)
            if not done.changes.empty:
                throttle.enter("verifying again")
                log = folder / f"{name}.verify-retry.log"
                done.verify = await run_verify(
                    brief.verify, space.workdir, timeout_s=config.verify_timeout_s, log=log
                )
        done.outcome = "verified" if done.verify.passed else "verify_failed"
        if done.changes.empty:
            done.outcome = "no_changes"
        return done
    finally:
        with anyio.CancelScope(shield=True):
            await _finish(space, done, brief, folder, name, started)


async def _retry(
    runner: Runner,
    binary: str,
    first: Attempt,
    done: Delegation,
    schema_file: str | None,
) -> None:
    """Resume Codex's thread once with the failing verify output."""
    assert done.verify is not None and first.run.thread_id is not None
    backend = runner.backend
    provider = backend.provider
    found = await scan_messages((Message("system", ""), Message("user", retry_prompt(done.verify))))
    screened = found.screen(provider.trust, overrides(provider))
    if screened.blocked:
        done.notes.append(f"no retry: the verify output holds data {provider.name} may not see")
        return
    runner.throttle.enter("codex fixing the verify failure")
    done.first_verify = done.verify
    done.retried = True
    thread = first.run.thread_id
    argv = backend.resume_command(binary, thread, schema_file, sandbox="workspace-write")
    second = await runner.run(argv, screened.texts[0], retry=1, before=first.run.usage)
    if second.run.usage is not None:
        done.usage = second.run.usage  # thread-cumulative: both runs
    else:
        done.usage = _add(done.usage, second.usage)
    if second.error is not None:
        done.notes.append(f"the retry failed: {second.error}")
        return
    message = screened.restore(second.run.final_message or "")
    if message.strip():
        done.summary = _summary(message)


async def _finish(
    space: Workspace, done: Delegation, brief: Brief, folder: Path, name: str, started: float
) -> None:
    """Patch file, apply, cleanup: whatever happened before."""
    changes = done.changes
    if changes is not None and not changes.empty:
        done.patch_file = await anyio.to_thread.run_sync(patch.write_patch, changes, folder, name)
        if changes.dropped:
            done.notes.append(
                f"left out of the patch (deny-listed): {', '.join(changes.dropped[:5])}"
            )
        if changes.nested:
            done.notes.append(
                f"nested git repositories: {', '.join(changes.nested[:5])} "
                "(their files are in the patch as plain files, their .git is not)"
            )
        if changes.lfs:
            done.notes.append(
                f"Git LFS files, as plain bytes since git-lfs is not installed: "
                f"{', '.join(changes.lfs[:5])} (a pointer file stays a pointer file; committed "
                "without git-lfs, they go into git, not LFS)"
            )
        if brief.apply:
            if done.outcome == "verified":
                try:
                    await anyio.to_thread.run_sync(patch.apply, space, changes)
                    done.applied = True
                except errors.OffloadError as exc:
                    done.apply_error = str(exc)
            else:
                done.apply_error = f"not applied: the outcome is {done.outcome}, not verified."
    done.seconds = time.monotonic() - started
    if brief.keep_workspace:
        done.kept = space.root
    else:
        # Removal (or the return to the pool) needs nothing from the result, so it does not
        # hold the result up; a non-daemon thread finishes it even if the server is shutting
        # down.
        threading.Thread(target=workspace.remove, args=(space,), name="delegate-cleanup").start()
    if retention.due():
        threading.Thread(target=retention.prune, args=(folder,), name="delegate-prune").start()


def _not_installed(backend: CodexBackend) -> errors.ProviderError:
    return errors.ProviderDown(
        backend.provider.name, f"`{backend.binary}` not found.", hint=INSTALL_HINT
    )


def _fatal(attempt: Attempt) -> None:
    """Codex could not work at all (login, plan, quota, network): an error with the fix."""
    if isinstance(attempt.error, FATAL):
        raise attempt.error


def _check_schema(schema: dict[str, Any], message: str, done: Delegation, spill: Path) -> None:
    """The reply checked against the caller's schema; a long one goes to a file."""
    try:
        checked = contract.check(contract.make_contract(schema=schema), message)
    except ValueError as why:
        done.notes.append(f"the final message does not match the schema: {why}")
        return
    if len(checked.text) <= SUMMARY_CHARS:
        done.summary = checked.text
        return
    spill.parent.mkdir(parents=True, exist_ok=True)
    spill.write_text(checked.text, "utf-8")
    done.summary = f"(JSON reply of {len(checked.text)} characters in {spill})"


def _summary(text: str) -> str:
    text = text.strip()
    if len(text) <= SUMMARY_CHARS:
        return text
    return text[: SUMMARY_CHARS - 20].rstrip() + " ... [trimmed]"


def _add(a: CodexUsage, b: CodexUsage) -> CodexUsage:
    return CodexUsage(
        a.input_tokens + b.input_tokens,
        a.cached_input_tokens + b.cached_input_tokens,
        a.cache_write_input_tokens + b.cache_write_input_tokens,
        a.output_tokens + b.output_tokens,
        a.reasoning_output_tokens + b.reasoning_output_tokens,
    )
