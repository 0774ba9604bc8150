"""Resume a session that its agent's entrypoint stopped (idle, max, OOM).

The stopped container was restarted by the kubelet and waits, running
nothing (see container/data/paude-entrypoint). The user's own ``pods/exec``
resumes it, so the agent needs no API access and no controller is involved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from paude.backends.base import Reporter
from paude.backends.openshift.exec import build_exec_argv
from paude.backends.openshift.objects import agent_name, agent_pod_name
from paude.backends.openshift.status import is_agent_running, stop_reason
from paude.facts import ENTRYPOINT_PATH
from paude.runner import TIMEOUT_EXEC, Runner

if TYPE_CHECKING:
    from paude.backends.openshift.client import KubeClient


def resume_if_stopped(api: KubeClient, runner: Runner, reporter: Reporter, *, session: str,
                      cli: str, target: dict[str, Any], timeout: float) -> None:
    """Resume the session's waiting agent, if its entrypoint stopped it.

    ``target`` is the exec target (pod, namespace, context) of ``session``. A container
    still in the kubelet's restart back-off is waited for first.
    """
    pod_name = agent_pod_name(session)
    pod = api.get("v1", "Pod", pod_name)
    reason = stop_reason(pod) if pod is not None else None
    if pod is None or reason is None or pod["metadata"].get("deletionTimestamp"):
        return
    reporter.info(f"Resuming session {session} (it stopped: {reason})")
    if not is_agent_running(pod):
        api.wait_pod_ready(pod_name, owner=("StatefulSet", agent_name(session)),
                           until=is_agent_running, timeout=timeout)
    argv = build_exec_argv(cli, **target, command=[ENTRYPOINT_PATH, "--paude-resume"])
    runner.run(argv, timeout=TIMEOUT_EXEC)
