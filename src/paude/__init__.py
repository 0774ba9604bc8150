"""paude: run Claude Code in a sandbox you can trust."""

__version__ = "0.1.0"
