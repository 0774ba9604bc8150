"""Render commands for display without leaking secrets."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

_SECRET_ASSIGNMENT = re.compile(
    r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*(?:KEY|TOKEN|SECRET|PASSWORD)[A-Za-z0-9_]*)=.+$",
    re.IGNORECASE,
)


def redact_argv(argv: Sequence[str]) -> str:
    """Return ``argv`` as a shell line with secret-looking values masked."""
    shown = []
    for arg in argv:
        match = _SECRET_ASSIGNMENT.match(arg)
        shown.append(f"{match.group('key')}=***" if match else arg)
    return shlex.join(shown)
