"""What of the host's Claude Code configuration reaches the agent (pure).

Only settings, instructions, commands and agent definitions: never
``.credentials.json`` (the subscription login), ``projects/`` (other
projects' transcripts), history, todos or shell snapshots. Of
``~/.claude.json`` only display preferences and the onboarding flag pass:
it also holds account details, per-project history and, for some logins,
``primaryApiKey``.
"""

from __future__ import annotations

import json

CLAUDE_DIR_ENTRIES = ("settings.json", "CLAUDE.md", "commands", "agents")
CLAUDE_JSON_KEYS = ("hasCompletedOnboarding", "lastOnboardingVersion", "theme", "editorMode",
                    "verbose", "autoCompactEnabled", "preferredNotifChannel")


def render_claude_json_seed(host_text: str | None) -> str:
    """Return the ``~/.claude.json`` the agent starts with, from the host's (if any)."""
    try:
        data = json.loads(host_text) if host_text else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    kept = {k: data[k] for k in CLAUDE_JSON_KEYS if k in data}
    return json.dumps(kept, indent=2, sort_keys=True) + "\n"
