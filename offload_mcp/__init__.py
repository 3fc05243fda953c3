"""offload-mcp: hand bounded work packets from Claude Code to cheaper backends."""

__version__ = "0.1.0"
