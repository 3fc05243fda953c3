"""Logging for the server: stderr (Claude Code keeps it) and a rotating file in the data dir.

Configured before `MCPServer` is built: the SDK calls `logging.basicConfig` on the root logger,
which does nothing once a handler is installed. Nothing here ever writes to stdout.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_file: Path, level: str = "INFO") -> None:
    root = logging.getLogger()
    root.setLevel(level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(logging.Formatter(FORMAT))
    stderr.setLevel(logging.WARNING)
    root.addHandler(stderr)
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            log_file, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
        )
    except OSError as exc:
        root.warning("cannot write the log file %s: %s", log_file, exc)
    else:
        rotating.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(rotating)
    # Request lines from HTTP clients would log every provider URL at INFO.
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "mcp", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
