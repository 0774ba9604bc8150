"""Reattach to a running OpenShift/Kubernetes session without loading the whole CLI.

``paude`` / ``paude attach [SESSION]`` on a running session should cost
little more than ``kubectl exec -it POD -- tmux attach``. Loading Typer,
Rich, pydantic and lightkube costs more than that whole exec, so this path
reads only the three settings attach needs (``backend.context``,
``backend.namespace``, ``sync.enabled``), makes one API request (GET the
agent pod, ``backends/openshift/quickget.py``) and replaces itself with the
same ``kubectl``/``oc exec -it`` argv the full backend builds
(``backends/openshift/exec.py``).

It goes on only when the session plainly runs: the pod exists with paude's
labels for this session, runs and is Ready, and (sync on) the session's
background sync runs here, which the full attach would otherwise restart.
Anything else, or any doubt (a config the three settings cannot be read
from plainly, a kubeconfig it does not handle, a failed request), returns
``None`` and the full CLI takes over and explains. ``paude`` on a running
session only attaches, as on podman: a changed paude.json applies at the
next start.
"""

from __future__ import annotations

import os
import sys

from paude.backends.openshift.agentpod import agent_pod_name, is_pod_ready, is_session_agent
from paude.cli.fastpath import read_config_files

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from paude.cli.fastpath import Cwd

# Flags that set these settings go to the full CLI (the argv has none here).
_BACKEND_KEYS = ("context", "namespace")


class QuickSettings:
    """The settings a reattach reads: where the session is, and whether it syncs."""

    __slots__ = ("context", "namespace", "sync")

    def __init__(self, context: str | None, namespace: str | None, sync: bool) -> None:
        self.context, self.namespace, self.sync = context, namespace, sync

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QuickSettings) and (
            (self.context, self.namespace, self.sync)
            == (other.context, other.namespace, other.sync))

    def __hash__(self) -> int:
        return hash((self.context, self.namespace, self.sync))

    def __repr__(self) -> str:
        return f"QuickSettings({self.context!r}, {self.namespace!r}, {self.sync!r})"


def read_settings(cwd: Cwd, env: Mapping[str, str]) -> QuickSettings | None:
    """Return the settings merged as the full CLI merges them (project over user), or ``None``.

    ``None`` when in doubt: a project paude.json that is a symlink (the full
    CLI confines it to the workspace), one that is not the text ``paude
    trust`` approved (the agent or a clone wrote it: the full CLI asks), or a
    value of the wrong type.
    """
    if os.path.islink(os.path.join(cwd, "paude.json")) or not is_project_file_trusted(cwd, env):
        return None
    layers = read_config_files(cwd, env)
    if layers is None:
        return None
    found: dict[str, object] = {"context": None, "namespace": None, "sync": True}
    for data in layers:
        backend, sync = data.get("backend", {}), data.get("sync", {})
        if not isinstance(backend, dict) or not isinstance(sync, dict):
            return None
        found.update({k: backend[k] for k in _BACKEND_KEYS if k in backend})
        if "enabled" in sync:
            found["sync"] = sync["enabled"]
    context, namespace, enabled = found["context"], found["namespace"], found["sync"]
    if not all(v is None or isinstance(v, str) for v in (context, namespace)) \
            or not isinstance(enabled, bool):  # fmt: skip
        return None
    return QuickSettings(context, namespace, enabled)  # type: ignore[arg-type]


def is_project_file_trusted(cwd: Cwd, env: Mapping[str, str]) -> bool:
    """Say whether the workspace has no paude.json or the one ``paude trust`` approved."""
    path = os.path.join(cwd, "paude.json")
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", errors="replace")  # as the approval reads it
    except FileNotFoundError:
        return True
    except OSError:
        return False
    from paude.syncproc import state_home
    from paude.trust.record import approved_text

    return approved_text(state_home(env), os.path.realpath(cwd), "paude.json") == text


def is_sync_running(name: str, env: Mapping[str, str]) -> bool:
    """Answer whether the background sync of session ``name`` runs on this machine."""
    from paude.syncproc import lock_holder, state_root

    return lock_holder(os.path.join(state_root(env), name, "lock")) is not None


def build_quick_attach(name: str, cwd: Cwd, env: Mapping[str, str]) -> list[str] | None:
    """Return the attach argv for a plainly running session ``name``, or ``None``."""
    settings = read_settings(cwd, env)
    if settings is None or (settings.sync and not is_sync_running(name, env)):
        return None
    from paude.backends.openshift.quickget import get_json, read_target

    target = read_target(env, context=settings.context, namespace=settings.namespace)
    if target is None:
        return None
    pod_name = agent_pod_name(name)
    pod = get_json(target, f"/api/v1/namespaces/{target.namespace}/pods/{pod_name}")
    if pod is None or not is_session_agent(pod, name) or not is_pod_ready(pod):
        return None
    from paude.backends.openshift.exec import build_attach_argv, pick_kube_cli

    return build_attach_argv(pick_kube_cli(), pod=pod_name, namespace=target.namespace,
                             context=settings.context)


def try_reattach(name: str, cwd: Cwd, env: Mapping[str, str]) -> int | None:
    """Replace this process with the attach of running session ``name``; ``None`` otherwise."""
    argv = build_quick_attach(name, cwd, env)
    if argv is None:
        return None
    from paude.errors import PaudeError
    from paude.runner.terminal import resolve

    try:
        exe = resolve(argv)
    except PaudeError:
        return None  # kubectl missing: the full CLI says so
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(exe, argv)
    return None  # not reached
