"""What every tool shares: turning errors into `ToolError`s and reporting progress."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from offload_mcp.errors import OffloadError

log = logging.getLogger(__name__)


@contextmanager
def tool_errors(tool: str) -> Iterator[None]:
    """Turn our errors into `ToolError`s (the only text the model sees) and log surprises."""
    try:
        yield
    except ToolError:
        raise
    except OffloadError as exc:
        raise ToolError(str(exc)) from None
    except Exception as exc:
        log.exception("%s failed unexpectedly", tool)
        raise ToolError(
            f"internal error in {tool} ({type(exc).__name__}); "
            "details are in the offload-mcp log file."
        ) from None


def progress_reporter(ctx: Context) -> Callable[[str], Awaitable[None]]:
    """Progress notifications keep Claude Code's idle timeout from firing on long packets."""
    steps = itertools.count(1)

    async def report(message: str) -> None:
        await ctx.report_progress(next(steps), None, message)

    return report
