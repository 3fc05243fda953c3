"""Run the caller's `verify` command in the workspace, bounded, and keep what matters of it.

The command runs through `/bin/sh -c` (it is a shell line the caller wrote, e.g.
`pytest -q tests/test_x.py`) in its own process group via the shared runner, so a timeout or
a cancelled call kills its children too. stderr is folded into stdout so the order of a
failure's lines survives. The whole output goes to a log file beside the patch; Claude and
the retry prompt get the tail, with earlier lines that name failures (pytest `FAILED`/`E `,
compiler `error:`) pulled in front when the tail alone would miss them.
"""

from __future__ import annotations

import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from offload_mcp.backends.process import OutputTooLarge, ProcessTimedOut, run_process

#: what the result shows / what the retry prompt carries
RESULT_LINES, RESULT_CHARS = 15, 1500
RETRY_LINES, RETRY_CHARS = 60, 6000
_KEPT_LINES = 400
_HIGHLIGHTS = 12
_FAILURE = re.compile(
    r"^(?:FAILED|ERROR)\b|^E\s{2,}|\berror(?:\[\w+\])?:|Error:|Traceback|AssertionError|"
    r"\bFAIL\b|panicked at",
)


@dataclass(frozen=True)
class VerifyResult:
    command: str
    #: None when it did not finish (timed out, too much output)
    exit_code: int | None
    seconds: float
    lines: tuple[str, ...]
    highlights: tuple[str, ...]
    note: str = ""
    log: Path | None = None

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def tail(self, max_lines: int = RESULT_LINES, max_chars: int = RESULT_CHARS) -> str:
        """The last lines, with failure lines from before them first; at most `max_chars`."""
        tail = list(self.lines[-max_lines:])
        earlier = [h for h in self.highlights if h not in tail][-_HIGHLIGHTS:]
        parts = [*earlier, "..."] if earlier else []
        text = "\n".join([*parts, *tail])
        if self.note:
            text = f"{text}\n[{self.note}]" if text else f"[{self.note}]"
        return text if len(text) <= max_chars else "..." + text[-(max_chars - 3) :]

    def describe(self) -> str:
        status = "timed out" if self.exit_code is None else f"exit {self.exit_code}"
        return f"`{self.command}` {status} ({self.seconds:.1f} s)"


async def run_verify(
    command: str, cwd: Path, *, timeout_s: float, log: Path | None = None
) -> VerifyResult:
    """Run `command` in `cwd`; never raises for the command's own failure or timeout."""
    lines: deque[str] = deque(maxlen=_KEPT_LINES)
    highlights: deque[str] = deque(maxlen=_HIGHLIGHTS * 4)
    started = time.monotonic()
    note = ""
    exit_code: int | None = None
    sink = log.open("w", encoding="utf-8") if log is not None else None
    try:
        async with run_process(
            ["/bin/sh", "-c", "exec 2>&1\n" + command],
            cwd=cwd,
            timeout_s=timeout_s,
            kill_grace_s=1.0,
        ) as proc:
            async for line in proc.lines():
                lines.append(line)
                if _FAILURE.search(line):
                    highlights.append(line)
                if sink is not None:
                    sink.write(line + "\n")
        assert proc.result is not None
        exit_code = proc.result.returncode
    except ProcessTimedOut as exc:
        note = f"verify {exc}; killed"
    except OutputTooLarge as exc:
        note = f"verify wrote too much ({exc}); killed"
    except OSError as exc:
        note = f"cannot run verify: {exc.strerror or exc}"
    finally:
        if sink is not None:
            sink.close()
    return VerifyResult(
        command=command,
        exit_code=exit_code,
        seconds=time.monotonic() - started,
        lines=tuple(lines),
        highlights=tuple(highlights),
        note=note,
        log=log,
    )
