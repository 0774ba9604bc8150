"""``kill -9`` of ``paude --backend openshift --detach`` during a start, then paude again.

The real CLI runs as the user bound only to paude's Role, on kwok's nodes
(no container has to run: the pods only have to be Ready). It is held
between two plan steps by its own step log (stepgate.py), with every step
before applied and none after, and killed there. Then ``paude`` again ends
with one healthy session and nothing else, or ``paude stop`` ends with
nothing but the workspace volume and ``paude stop --force`` with nothing.
Each end state is listed by label (oshift_state.py): every object of
paude's kinds in the test's namespace.

The podman counterparts are in ``tests/podman/test_interrupt.py``.
"""

from __future__ import annotations

import os
import signal

import pytest
from oshift_state import assert_healthy, assert_stops_clean, planned, spawn, wait_gone, what_exists
from stepgate import StepGate
from test_openshift_attach import OpenShiftCLI
from test_openshift_attach import openshift_cli as openshift_cli  # a fixture

from paude.naming import derive_session_name

pytestmark = pytest.mark.k8s

# Where paude is killed: after the first step of this kind, before the next step.
KILL_POINTS = {
    "the workspace volume made, nothing else": "PersistentVolumeClaim",
    "the proxy's credential made, its policies not": "Secret",
    "the proxy's Deployment made, its Service not": "Deployment",
    "the agent's pod ready, its proxy's endpoints not written": "StatefulSet",
}


def kill_during_start(cli: OpenShiftCLI, point: str, plan: list[str]) -> list[str]:
    """Start the workspace's session, kill -9 paude at ``point``; return the steps applied."""
    gate = StepGate(cli.root / "gate")
    start = spawn(cli, "--backend", "openshift", "--detach", env=gate.env())
    try:
        gate.let_through_until(start.proc, f"kind: {KILL_POINTS[point]}\n")
    finally:
        os.killpg(start.proc.pid, signal.SIGKILL)
        start.proc.wait(timeout=60)
    applied = [_name(step) for step in gate.steps]
    found = what_exists(cli.cluster, cli.namespace)
    assert set(applied) <= set(found), (applied, found)
    assert not set(plan[len(applied):]) & set(found), (applied, found)  # nothing of later steps
    return applied


def _name(step: str) -> str:
    lines = step.splitlines()
    kind = next(ln.split(": ", 1)[1] for ln in lines if ln.startswith("kind: "))
    name = next(ln.split(": ", 1)[1] for ln in lines if ln.startswith("  name: "))
    return f"{kind}/{name}"


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_9_during_a_start_then_paude_again_gives_one_healthy_session(
    openshift_cli: OpenShiftCLI, point: str
) -> None:
    cli = openshift_cli
    name = derive_session_name(cli.workspace)
    plan = planned(cli)
    kill_during_start(cli, point, plan)
    cli.run("--backend", "openshift", "--detach")
    assert_healthy(cli, name, plan)
    assert_stops_clean(cli, name)


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_stop_after_a_kill_9_during_a_start_leaves_nothing(
    openshift_cli: OpenShiftCLI, point: str
) -> None:
    cli = openshift_cli
    name = derive_session_name(cli.workspace)
    applied = kill_during_start(cli, point, planned(cli))
    claim = f"PersistentVolumeClaim/paude-{name}-workspace"
    cli.run("stop", name)
    wait_gone(cli.cluster, cli.namespace, [claim] if claim in applied else [])
    cli.run("stop", name, "--force", "--yes")
    wait_gone(cli.cluster, cli.namespace, [])
