"""argv for ``oc``/``kubectl exec``: attach to the agent's tmux, or run a command.

Only interactive TTY work goes through the CLI; everything else uses the API.
argv are lists, never shell strings; the command to run in the pod follows
``--`` untouched, so no word of it is re-split.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence

from paude.backends.openshift.objects import AGENT_CONTAINER
from paude.facts import TMUX_SESSION


def pick_kube_cli(which: Callable[[str], str | None] = shutil.which) -> str:
    """Return ``oc`` when installed, else ``kubectl`` (the runner reports it missing)."""
    return "oc" if which("oc") else "kubectl"


def _base(cli: str, *, namespace: str, context: str | None) -> list[str]:
    argv = [cli]
    if context:
        argv += ["--context", context]
    return [*argv, "--namespace", namespace, "exec"]


def build_attach_argv(cli: str, *, pod: str, namespace: str, context: str | None) -> list[str]:
    """Return the argv that attaches this terminal to the session's tmux."""
    return [
        *_base(cli, namespace=namespace, context=context),
        "-it",
        pod,
        "-c",
        AGENT_CONTAINER,
        "--",
        "tmux",
        "attach",
        "-t",
        TMUX_SESSION,
    ]


def build_exec_argv(
    cli: str, *, pod: str, namespace: str, context: str | None, command: Sequence[str]
) -> list[str]:
    """Return the argv that runs ``command`` in the agent container, without a TTY."""
    return [
        *_base(cli, namespace=namespace, context=context),
        pod,
        "-c",
        AGENT_CONTAINER,
        "--",
        *command,
    ]
