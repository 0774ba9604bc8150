"""``paude doctor``: what a session needs, checked one line at a time, each with its fix."""

from paude.doctor.checks import Check, CheckStatus, render_checks

__all__ = ["Check", "CheckStatus", "render_checks"]
