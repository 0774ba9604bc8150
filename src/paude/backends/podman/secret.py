"""The model gateway's podman secret (its credential): found by name, owned by its labels.

Light on imports: ``paude stop``'s quick path (``removal.py``) uses it.

podman 4.3 cannot list secrets by label (``secret ls --filter`` knows only
``name`` and ``id``, and ``--format json`` prints the word "json"), and has no
``secret create --replace`` and no ``secret rm --ignore``. One ``secret
inspect`` of the session's name answers both whether it exists and whose it is.
"""

from __future__ import annotations

import json

from paude.backends.podman.names import PODMAN
from paude.errors import CommandFailedError
from paude.naming import LABEL_MANAGED_BY, LABEL_SESSION, MANAGED_BY

TYPE_CHECKING = False
if TYPE_CHECKING:
    from paude.runner import Result, Runner

_ABSENT = "no such secret"  # podman: 'no secret with name or id "x": no such secret'


def build_secret_inspect_argv(name: str) -> list[str]:
    """Return argv inspecting the secret ``name`` (its labels say whose it is)."""
    return [PODMAN, "secret", "inspect", name]


def build_secret_rm_argv(name: str) -> list[str]:
    """Return argv removing the secret ``name``."""
    return [PODMAN, "secret", "rm", name]


def parse_secret_labels(result: Result) -> dict[str, str] | None:
    """Return the labels of the inspected secret, or ``None`` when it does not exist.

    Raises:
        CommandFailedError: podman failed for another reason than a missing secret.
    """
    if result.returncode != 0:
        if _ABSENT in result.stderr:
            return None
        raise CommandFailedError(result.argv, result.returncode, result.stderr)
    found = json.loads(result.stdout or "[]") or []
    if not found:
        return None
    return dict((found[0].get("Spec") or {}).get("Labels") or {})


def is_session_secret(labels: dict[str, str] | None, session: str) -> bool:
    """Answer whether a secret's ``labels`` (``None``: absent) say it is ``session``'s."""
    return (labels is not None and labels.get(LABEL_MANAGED_BY) == MANAGED_BY
            and labels.get(LABEL_SESSION) == session)


def run_find_secret(runner: Runner, name: str, *, timeout: float) -> dict[str, str] | None:
    """Return the labels of the secret ``name``, or ``None`` when it does not exist."""
    return parse_secret_labels(runner.run(build_secret_inspect_argv(name), timeout=timeout,
                                          check=False))
