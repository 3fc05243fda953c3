"""The result Claude reads: short prose, the outcome first, long things as file paths.

Claude pays for every token of it, so: the outcome word, Codex's summary (trimmed), the
diff stat (capped), verify's exit and the tail of its output only when it failed, the patch
path, whether it was applied, and one footer line with tokens and time.
"""

from __future__ import annotations

from offload_mcp.delegate.run import Delegation

STAT_LINES = 25


def render(done: Delegation) -> str:
    head = f"outcome: {done.outcome}"
    if done.retried:
        head += " (after 1 retry with the verify output)"
    lines = [head]
    if done.summary:
        lines += ["", done.summary, ""]
    changes = done.changes
    if changes is not None and not changes.empty:
        stat = changes.stat.splitlines()
        if len(stat) > STAT_LINES:
            stat = [*stat[: STAT_LINES - 1], f" ... ({len(stat) - STAT_LINES} more)", stat[-1]]
        lines.append("changes:")
        lines += stat
    lines += _verify_lines(done)
    if done.patch_file is not None:
        lines.append(f"patch: {done.patch_file}")
    if done.applied:
        lines.append("applied to the working tree (not staged, not committed).")
    elif done.apply_error:
        lines.append(done.apply_error)
    if done.kept is not None:
        lines.append(f"workspace kept: {done.kept}")
    lines += [f"note: {note}" for note in done.notes]
    usage = done.usage
    cached = f" ({usage.cached_input_tokens} cached)" if usage.cached_input_tokens else ""
    lines.append(
        f"[delegate_to_codex: {done.provider} ({done.model}), {usage.input_tokens}{cached}"
        f"->{usage.output_tokens} tokens, {done.seconds:.1f} s]"
    )
    return "\n".join(lines)


def _verify_lines(done: Delegation) -> list[str]:
    verify = done.verify
    if verify is None:
        return []
    lines = []
    if done.first_verify is not None:
        lines.append(f"verify before the retry: {done.first_verify.describe()}")
    lines.append(f"verify: {verify.describe()}")
    if not verify.passed:
        lines.append(verify.tail())
    if verify.log is not None:
        lines.append(f"verify log: {verify.log}")
    return lines
