"""`python -m offload_mcp` runs the command line."""

from offload_mcp.cli import cli

if __name__ == "__main__":
    cli()
