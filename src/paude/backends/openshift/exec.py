"""argv for ``oc``/``kubectl exec``: attach to the agent's tmux, or run a command.

Only interactive TTY work goes through the CLI; everything else uses the API.
argv are lists, never shell strings; the command to run in the pod follows
``--`` untouched, so no word of it is re-split.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from paude.backends.openshift.agentpod import AGENT_CONTAINER
from paude.facts import TMUX_SESSION


def pick_kube_cli(which: Callable[[str], str | None] | None = None) -> str:
    """Return ``oc`` when installed, else ``kubectl`` (the runner reports it missing)."""
    from paude.runner.terminal import find_program  # shutil.which, without importing shutil

    return "oc" if (which or find_program)("oc") else "kubectl"


def _base(cli: str, *, namespace: str, context: str | None) -> list[str]:
    argv = [cli]
    if context:
        argv += ["--context", context]
    return [*argv, "--namespace", namespace, "exec"]


def build_attach_argv(cli: str, *, pod: str, namespace: str, context: str | None) -> list[str]:
    """Return the argv that attaches this terminal to the session's tmux."""
    return build_exec_argv(cli, pod=pod, namespace=namespace, context=context,
                           command=["tmux", "attach", "-t", TMUX_SESSION], tty=True)


def build_exec_argv(
    cli: str,
    *,
    pod: str,
    namespace: str,
    context: str | None,
    command: Sequence[str],
    stdin: bool = False,
    tty: bool = False,
) -> list[str]:
    """Return the argv that runs ``command`` in the agent container.

    ``stdin`` passes this process's stdin through (``-i``); ``tty`` gives the
    command a terminal as well (``-t``: stderr then joins stdout on it), for
    an interactive ``paude exec -- bash``. ``paude exec`` decides as
    podman's does: stdin always, a TTY when stdin and stdout both are one.
    Without either (paude's own calls) the command reads nothing.
    """
    flags = ["-it"] if tty else ["-i"] if stdin else []
    return [
        *_base(cli, namespace=namespace, context=context),
        *flags,
        pod,
        "-c",
        AGENT_CONTAINER,
        "--",
        *command,
    ]
