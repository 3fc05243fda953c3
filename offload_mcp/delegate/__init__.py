"""delegate_to_codex: a bounded coding task to the Codex CLI, isolated, verified, then a patch.

One job per module:
- `workspace`: the isolated copy (git worktree + the user's uncommitted work, or a temp
  copy), with the deny list applied, and its removal
- `codex_run`: one `codex exec` / `exec resume` streamed, with ledger row and cool-downs
- `verify`: the caller's check command, bounded, and the tail of its output that matters
- `patch`: Codex's changes as a patch file, and the all-or-nothing apply
- `progress`: throttled progress notifications with a heartbeat
- `run`: the orchestration (argument checks, privacy gate, retry once); `report`: the result
"""
